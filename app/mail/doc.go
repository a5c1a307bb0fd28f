// Package mail writes and sends Z Image's email. Flows put a message in the
// outbox (sqlite) in the same transaction as the event that causes it, its
// recipient and fields sealed with the person's key; the Sender opens,
// renders and sends what is due over SMTP, retrying with growing waits and
// dead-lettering what keeps failing for an admin to retry. Every string is
// in one catalog per language (embed/mail/en.toml), rendered into a plain
// text part and an accessible HTML part.
package mail
