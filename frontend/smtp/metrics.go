package smtp

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sessions   *prometheus.CounterVec
	active     prometheus.Gauge
	deliveries *prometheus.CounterVec
	rejections *prometheus.CounterVec
	latency    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_smtp_sessions_total",
			Help: "SMTP sessions accepted, by listener mode."}, []string{"mode"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "stoa_smtp_sessions_active",
			Help: "SMTP sessions open now."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_smtp_deliveries_total",
			Help: "Recipients delivered (delivered, junk), queued or failed."}, []string{"mode", "result"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stoa_smtp_rejections_total",
			Help: "Commands or messages refused, by reason."}, []string{"mode", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stoa_smtp_delivery_seconds",
			Help:    "Time from end of data to the reply (checks and durable storage).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"mode"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.sessions, m.active, m.deliveries, m.rejections, m.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	return m, nil
}
