package opensearch

import (
	"strings"
	"time"

	"github.com/stoa-mail/stoa/indexer"
)

// doc is what is sent to OpenSearch. Readable fields serve support staff
// (Dashboards, standard analyser); t_* fields hold the terms of
// indexer.Analyze joined by spaces, indexed with the whitespace analyser
// and left out of _source: IMAP SEARCH queries them with terms analysed
// the same way, so OpenSearch, Bleve and the in-process matcher agree
// exactly, and no analysis plugin is needed (ADR 0008).
type doc struct {
	Kind         string    `json:"kind"`
	Account      string    `json:"account"`
	Mailbox      uint32    `json:"mailbox"`
	UID          uint32    `json:"uid"`
	EmailID      uint64    `json:"email_id"`
	ThreadID     uint64    `json:"thread_id"`
	ModSeq       uint64    `json:"modseq"`
	BlobID       string    `json:"blob_id,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	MessageID    string    `json:"message_id,omitempty"`
	Date         time.Time `json:"date,omitzero"`
	InternalDate time.Time `json:"internal_date,omitzero"`
	Size         int64     `json:"size"`
	Flags        []string  `json:"flags,omitempty"`
	FromName     []string  `json:"from_name,omitempty"`
	FromEmail    []string  `json:"from_email,omitempty"`
	FromDomain   []string  `json:"from_domain,omitempty"`
	ToName       []string  `json:"to_name,omitempty"`
	ToEmail      []string  `json:"to_email,omitempty"`
	ToDomain     []string  `json:"to_domain,omitempty"`
	CcName       []string  `json:"cc_name,omitempty"`
	CcEmail      []string  `json:"cc_email,omitempty"`
	CcDomain     []string  `json:"cc_domain,omitempty"`
	BccName      []string  `json:"bcc_name,omitempty"`
	BccEmail     []string  `json:"bcc_email,omitempty"`
	BccDomain    []string  `json:"bcc_domain,omitempty"`
	Attachments  []string  `json:"attachment_names,omitempty"`
	AttachTypes  []string  `json:"attachment_types,omitempty"`
	HasAttach    bool      `json:"has_attachment"`
	HeaderNames  []string  `json:"header_names,omitempty"`

	TSubject     string   `json:"t_subject,omitempty"`
	TFrom        []string `json:"t_from,omitempty"`
	TTo          []string `json:"t_to,omitempty"`
	TCc          []string `json:"t_cc,omitempty"`
	TBcc         []string `json:"t_bcc,omitempty"`
	TBody        string   `json:"t_body,omitempty"`
	THTML        string   `json:"t_html,omitempty"`
	TAttachments []string `json:"t_attachment_names,omitempty"`
	THeaders     []string `json:"t_headers,omitempty"`
	THeaderTerms []string `json:"t_header_terms,omitempty"`
}

func terms(s string) string { return strings.Join(indexer.Analyze(s), " ") }

func termsAll(vs []string) []string {
	var out []string
	for _, v := range vs {
		out = append(out, terms(v)) // empty elements keep array positions aligned
	}
	return out
}

func toDoc(d *indexer.Doc) *doc {
	return &doc{Kind: d.Kind, Account: d.Account, Mailbox: d.Mailbox, UID: d.UID, EmailID: d.EmailID,
		ThreadID: d.ThreadID, ModSeq: d.ModSeq, BlobID: d.BlobID, Subject: d.Subject, MessageID: d.MessageID,
		Date: d.Date, InternalDate: d.InternalDate, Size: d.Size, Flags: d.Flags,
		FromName: d.FromName, FromEmail: d.FromEmail, FromDomain: d.FromDomain,
		ToName: d.ToName, ToEmail: d.ToEmail, ToDomain: d.ToDomain,
		CcName: d.CcName, CcEmail: d.CcEmail, CcDomain: d.CcDomain,
		BccName: d.BccName, BccEmail: d.BccEmail, BccDomain: d.BccDomain,
		Attachments: d.Attachments, AttachTypes: d.AttachTypes, HasAttach: d.HasAttach, HeaderNames: d.HeaderNames,
		TSubject: terms(d.Subject), TFrom: termsAll(d.From), TTo: termsAll(d.To), TCc: termsAll(d.Cc), TBcc: termsAll(d.Bcc),
		TBody: terms(d.Body), THTML: terms(d.HTML), TAttachments: termsAll(d.Attachments),
		THeaders: termsAll(d.Headers), THeaderTerms: d.HeaderTerms}
}
