package smtp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"

	"blitiri.com.ar/go/spf"
	"github.com/emersion/go-msgauth/authres"
	"github.com/emersion/go-msgauth/dkim"
	"github.com/emersion/go-msgauth/dmarc"
	"golang.org/x/net/publicsuffix"
)

// Resolver is the DNS the sender checks use; *net.Resolver implements it.
// Tests point it at a small DNS server on 127.0.0.1.
type Resolver interface {
	LookupTXT(ctx context.Context, name string) ([]string, error)
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

// ResolverAt returns a resolver that asks the DNS server at addr
// ("127.0.0.1:5353") instead of the system's.
func ResolverAt(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

type authResults struct {
	spf, dkim, dmarc string
	header           string // "Authentication-Results: ...\r\n"
}

// authservID returns the authserv-id of an Authentication-Results value
// (RFC 8601 §2.2), lower-cased.
func authservID(v string) string {
	id, _, _ := strings.Cut(v, ";")
	id = strings.TrimSpace(id)
	if i := strings.IndexAny(id, " \t("); i >= 0 {
		id = id[:i]
	}
	return strings.ToLower(id)
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return strings.ToLower(strings.TrimSuffix(addr[i+1:], "."))
	}
	return strings.ToLower(addr)
}

// orgDomain is the organizational domain (RFC 7489 §3.2).
func orgDomain(d string) string {
	if o, err := publicsuffix.EffectiveTLDPlusOne(d); err == nil {
		return o
	}
	return d
}

func aligned(a, b string, mode dmarc.AlignmentMode) bool {
	if a == "" || b == "" {
		return false
	}
	if mode == dmarc.AlignmentStrict {
		return strings.EqualFold(a, b)
	}
	return orgDomain(a) == orgDomain(b)
}

// authenticate checks SPF (RFC 7208), DKIM (RFC 6376) and DMARC
// (RFC 7489) and formats the Authentication-Results field (RFC 8601).
func (s *Server) authenticate(c *conn, tx *txn, raw []byte, fs []field) authResults {
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.DNSTimeout)
	defer cancel()
	lookupTXT := func(name string) ([]string, error) { return s.resolver.LookupTXT(ctx, name) }

	// SPF: the MAIL FROM identity, or postmaster@HELO for the null
	// reverse-path (RFC 7208 §2.4).
	sender := tx.from.String()
	if tx.from.IsNull() {
		sender = "postmaster@" + c.helo
	}
	spfRes := spf.None
	if c.ip != nil {
		spfRes, _ = spf.CheckHostWithSender(c.ip, c.helo, sender, spf.WithResolver(s.resolver), spf.WithContext(ctx))
	}
	mailFromDomain := domainOf(sender)
	results := []authres.Result{&authres.SPFResult{Value: authres.ResultValue(spfRes), From: mailFromDomain}}

	// DKIM: every signature, at most 5.
	dkimSummary := "none"
	var dkimPass []string
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{LookupTXT: lookupTXT, MaxVerifications: 5})
	if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
		results = append(results, &authres.DKIMResult{Value: authres.ResultPermError})
		dkimSummary = "permerror"
	}
	for _, v := range verifs {
		r := &authres.DKIMResult{Domain: v.Domain, Identifier: v.Identifier}
		switch {
		case v.Err == nil:
			r.Value = authres.ResultPass
			dkimPass = append(dkimPass, strings.ToLower(v.Domain))
		case dkim.IsTempFail(v.Err):
			r.Value = authres.ResultTempError
		case dkim.IsPermFail(v.Err):
			r.Value = authres.ResultPermError
		default:
			r.Value = authres.ResultFail
		}
		if dkimSummary != "pass" {
			dkimSummary = string(r.Value)
		}
		results = append(results, r)
	}
	if len(verifs) == 0 && dkimSummary == "none" {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone})
	}

	// DMARC: the RFC5322.From domain must be aligned with a passing SPF
	// or DKIM identity (RFC 7489 §3.1, §4.2).
	dm := &authres.DMARCResult{Value: authres.ResultNone}
	if n, i := countFields(fs, "From"); n != 1 {
		dm.Value = authres.ResultPermError
		dm.Reason = "not exactly one From field"
	} else if list, err := mail.ParseAddressList(fs[i].value(raw)); err != nil || len(list) != 1 {
		dm.Value = authres.ResultPermError
		dm.Reason = "unparsable From"
	} else {
		from := domainOf(list[0].Address)
		dm.From = from
		rec, err := dmarc.LookupWithOptions(from, &dmarc.LookupOptions{LookupTXT: lookupTXT})
		if errors.Is(err, dmarc.ErrNoPolicy) && orgDomain(from) != from {
			rec, err = dmarc.LookupWithOptions(orgDomain(from), &dmarc.LookupOptions{LookupTXT: lookupTXT})
		}
		switch {
		case errors.Is(err, dmarc.ErrNoPolicy):
		case dmarc.IsTempFail(err):
			dm.Value = authres.ResultTempError
		case err != nil:
			dm.Value = authres.ResultPermError
		default:
			pass := spfRes == spf.Pass && aligned(mailFromDomain, from, rec.SPFAlignment)
			for _, d := range dkimPass {
				pass = pass || aligned(d, from, rec.DKIMAlignment)
			}
			dm.Value = authres.ResultFail
			dm.Reason = "p=" + string(rec.Policy)
			if pass {
				dm.Value, dm.Reason = authres.ResultPass, ""
			}
		}
	}
	results = append(results, dm)
	v := authres.Format(s.cfg.Hostname, results)
	return authResults{spf: string(spfRes), dkim: dkimSummary, dmarc: string(dm.Value),
		header: "Authentication-Results: " + foldAR(v) + "\r\n"}
}

// foldAR puts each result of a formatted Authentication-Results value on
// its own continuation line (RFC 5322 §2.2.3).
func foldAR(v string) string {
	parts := strings.Split(v, ";")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return strings.Join(parts, ";\r\n\t")
}
