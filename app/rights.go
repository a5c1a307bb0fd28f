package app

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Support ticket statuses: a ticket is open until staff answer it,
// answered until the person writes again (open) or staff close it.
const (
	TicketOpen     = "open"
	TicketAnswered = "answered"
	TicketClosed   = "closed"
)

// Who wrote a ticket message.
const (
	AuthorUser    = "user"
	AuthorSupport = "support"
	AuthorAdmin   = "admin"
)

// Limits of what a person may write to support.
const (
	MaxTicketSubject = 200
	MaxTicketBody    = 10000
)

// Ticket is one support conversation. Subject and message bodies are
// plaintext only in memory: they are sealed with the owner's key, also
// when staff write them, because the conversation belongs to the person.
type Ticket struct {
	ID            string
	UserID        string
	Subject       string
	Status        string
	CreatedAt     time.Time
	LastMessageAt time.Time
	Messages      []TicketMessage // filled when one ticket is read
}

// TicketMessage is one message of a ticket.
type TicketMessage struct {
	ID         string
	TicketID   string
	AuthorID   string
	AuthorRole string
	Body       string
	CreatedAt  time.Time
}

// ValidateTicketText checks a subject (when checkSubject) and a body.
func ValidateTicketText(subject, body string, checkSubject bool) error {
	fe := FieldErrors{}
	if checkSubject {
		switch s := strings.TrimSpace(subject); {
		case s == "":
			fe.Add("subject", "Give the ticket a subject, a few words saying what it is about.")
		case utf8.RuneCountInString(s) > MaxTicketSubject:
			fe.Add("subject", "The subject is too long: keep it under 200 characters and put the details in the message.")
		case CheckText("subject", s, OneLine) != "":
			fe.Add("subject", CheckText("subject", s, OneLine))
		}
	}
	switch b := strings.TrimSpace(body); {
	case b == "":
		fe.Add("body", "Write a message: what happened, and what you need.")
	case CheckText("message", b, MultiLine) != "":
		fe.Add("body", CheckText("message", b, MultiLine))
	case utf8.RuneCountInString(b) > MaxTicketBody:
		fe.Add("body", "The message is too long: keep it under 10000 characters, or split it into several messages.")
	}
	return fe.Err()
}

// Data-rights request kinds: the rights the privacy policy lists.
const (
	RequestAccess    = "access"
	RequestErase     = "erase"
	RequestRectify   = "rectify"
	RequestRestrict  = "restrict"
	RequestObject    = "object"
	RequestPort      = "port"
	RequestDoNotSell = "do_not_sell"
)

// RequestKinds lists the kinds in the order they are shown.
var RequestKinds = []string{RequestAccess, RequestErase, RequestRectify, RequestRestrict, RequestObject, RequestPort, RequestDoNotSell}

// Data-rights request statuses.
const (
	RequestOpen   = "open"
	RequestClosed = "closed"
)

// RequestDeadline is how long we have to answer a data-rights request, as
// the privacy policy promises.
const RequestDeadline = 30 * 24 * time.Hour

// MaxRequestDetails bounds the free text of a data-rights request.
const MaxRequestDetails = 5000

// DataRequest is a person exercising a right. Details is plaintext only in
// memory: it is sealed with the person's key.
type DataRequest struct {
	ID         string
	UserID     string
	Kind       string
	Status     string
	Details    string
	CreatedAt  time.Time
	DueAt      time.Time
	ClosedAt   time.Time // zero while open
	Resolution string    // how it was answered; not personal data
}

// Overdue reports whether r is still open after its due date.
func (r *DataRequest) Overdue(now time.Time) bool {
	return r.Status == RequestOpen && r.DueAt.Before(now)
}

// ValidateDataRequest checks a request a person files.
func ValidateDataRequest(kind, details string) error {
	fe := FieldErrors{}
	known := false
	for _, k := range RequestKinds {
		known = known || k == kind
	}
	if !known {
		fe.Add("kind", "Choose what you are asking for: one of "+strings.Join(RequestKinds, ", ")+".")
	}
	if utf8.RuneCountInString(details) > MaxRequestDetails {
		fe.Add("details", "The details are too long: keep them under 5000 characters.")
	} else if msg := CheckText("details", details, MultiLine); msg != "" {
		fe.Add("details", msg)
	}
	return fe.Err()
}

// Export statuses. An export is pending until the worker takes it,
// running while the archive is written, then ready (downloadable until
// ExpiresAt) or failed.
const (
	ExportPending = "pending"
	ExportRunning = "running"
	ExportReady   = "ready"
	ExportFailed  = "failed"
)

// Export is one archive of everything we hold on a person.
type Export struct {
	ID        string
	UserID    string
	Status    string
	Bytes     int64 // size of the (plaintext) ZIP once ready
	Error     string
	CreatedAt time.Time
	DoneAt    time.Time // zero until ready or failed
	ExpiresAt time.Time // zero until ready
}

// UsageEvent is one first-party usage fact: what kind of thing happened
// and on which route pattern. Never an address, a prompt or a device.
type UsageEvent struct {
	ID     int64
	UserID string // "" for anonymous visitors
	Kind   string
	Route  string
	At     time.Time
	Detail string // a JSON object of non-personal facts, or ""
}

// Usage event kinds.
const (
	UsageGeneration = "generation.created"
	UsageLogin      = "login"
	UsagePageView   = "page.view"
)

// Audit actions of the privacy rights area.
const (
	AuditTicketRead    = "ticket.read"
	AuditTicketReply   = "ticket.reply"
	AuditTicketClose   = "ticket.close"
	AuditExportRequest = "export.request"
	AuditExportAdmin   = "export.admin"
	AuditRequestFile   = "request.file"
	AuditRequestClose  = "request.close"
)
