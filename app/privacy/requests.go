package privacy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"zimage/app"
	"zimage/app/sqlite"
)

// Requests records data-rights requests and their 30-day deadline. Those
// the software answers itself close themselves: access and port when the
// export they start is ready, erase when account deletion calls
// CloseRequestsOfKind.
type Requests struct {
	db      *sqlite.DB
	sealer  Sealer
	exports *Exports // nil: access and port requests wait for an admin
	log     *slog.Logger
}

// NewRequests returns the service. exports may be nil.
func NewRequests(db *sqlite.DB, sealer Sealer, exports *Exports, log *slog.Logger) *Requests {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Requests{db: db, sealer: sealer, exports: exports, log: log}
}

// FiledRequest is a request just filed, and what was started for it.
type FiledRequest struct {
	app.DataRequest
	// ExportID is the export started for an access or port request ("" if
	// none was started because one was already being made: that one will
	// answer the request).
	ExportID string
	// Next tells the person what happens now.
	Next string
}

// File records userID's request of kind. Access and port start an export
// at once; erase points to account deletion, which closes it.
func (r *Requests) File(ctx context.Context, userID, kind, details string) (*FiledRequest, error) {
	kind, details = strings.TrimSpace(kind), strings.TrimSpace(details)
	if err := app.ValidateDataRequest(kind, details); err != nil {
		return nil, err
	}
	row := &sqlite.DataRequestRow{DataRequest: app.DataRequest{ID: newID(r.db.Now()), UserID: userID, Kind: kind, Details: details}}
	var err error
	if row.SealedDetails, err = r.sealer.Seal(userID, requestDetailsAAD(row.ID), []byte(details)); err != nil {
		return nil, app.Wrap(err, "Could not encrypt the request.")
	}
	if err := r.db.CreateDataRequest(ctx, row, app.AuditEntry{ActorID: userID, SubjectID: userID, Action: app.AuditRequestFile,
		Detail: fmt.Sprintf(`{"request":%q,"kind":%q}`, row.ID, kind)}); err != nil {
		return nil, err
	}
	out := &FiledRequest{DataRequest: row.DataRequest}
	due := row.DueAt.Format("2 January 2006")
	switch kind {
	case app.RequestAccess, app.RequestPort:
		out.Next = "An archive of your data is being made; this request closes itself when it is ready to download (GET /api/v1/me/exports)."
		if r.exports == nil {
			out.Next = "An administrator will send you a copy of your data by " + due + "."
			break
		}
		e, err := r.exports.Request(ctx, userID)
		switch {
		case err == nil:
			out.ExportID = e.ID
		case app.ErrorCode(err) == app.ECONFLICT:
			// The export already under way answers this request too.
		default:
			r.log.Error("requests: start export", "request", row.ID, "err", err)
			out.Next = "We could not start your export automatically; an administrator will answer this request by " + due + "."
		}
	case app.RequestErase:
		out.Next = "You can delete your account yourself at once in your account settings (DELETE /api/v1/me); this request closes when you do. Otherwise an administrator will answer by " + due + "."
	default:
		out.Next = "An administrator will answer this request by " + due + "."
	}
	return out, nil
}

// List returns userID's own requests, newest first.
func (r *Requests) List(ctx context.Context, userID string) ([]app.DataRequest, error) {
	rows, err := r.db.DataRequestsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	return r.open(rows), nil
}

// Queue returns up to limit requests for admins, status "" meaning all,
// the soonest due first. Details are opened: answering a request needs
// them, and the admin routes are audited by who may call them.
func (r *Requests) Queue(ctx context.Context, status string, limit int) ([]app.DataRequest, error) {
	switch status {
	case "", app.RequestOpen, app.RequestClosed:
	default:
		return nil, &app.Error{Code: app.EINVALID, Message: fmt.Sprintf("Unknown request status %q: use open or closed.", status), Fields: map[string]string{"status": "must be open or closed"}}
	}
	if limit <= 0 || limit > 500 {
		limit = 500
	}
	rows, err := r.db.DataRequestQueue(ctx, status, limit)
	if err != nil {
		return nil, err
	}
	return r.open(rows), nil
}

// Close closes request id for admin adminID with a resolution the person
// will see.
func (r *Requests) Close(ctx context.Context, adminID, id, resolution string) (app.DataRequest, error) {
	resolution = strings.TrimSpace(resolution)
	switch {
	case resolution == "":
		return app.DataRequest{}, app.FieldErrors{"resolution": "Say how the request was answered; the person will read it."}.Err()
	case utf8.RuneCountInString(resolution) > 2000:
		return app.DataRequest{}, app.FieldErrors{"resolution": "Keep the resolution under 2000 characters."}.Err()
	case app.CheckText("resolution", resolution, app.MultiLine) != "":
		return app.DataRequest{}, app.FieldErrors{"resolution": app.CheckText("resolution", resolution, app.MultiLine)}.Err()
	}
	row, err := r.db.CloseDataRequest(ctx, id, resolution, app.AuditEntry{ActorID: adminID, Action: app.AuditRequestClose,
		Detail: fmt.Sprintf(`{"request":%q}`, id)})
	if err != nil {
		return app.DataRequest{}, err
	}
	return r.open([]sqlite.DataRequestRow{row})[0], nil
}

// CloseRequestsOfKind closes userID's open requests of kind with note as
// the resolution, and returns how many. Account deletion calls it with
// app.RequestErase.
func (r *Requests) CloseRequestsOfKind(ctx context.Context, userID, kind, note string) (int, error) {
	return r.db.CloseRequestsOfKind(ctx, userID, kind, note)
}

func (r *Requests) open(rows []sqlite.DataRequestRow) []app.DataRequest {
	out := make([]app.DataRequest, 0, len(rows))
	for _, row := range rows {
		d := row.DataRequest
		b, err := r.sealer.Open(row.UserID, requestDetailsAAD(row.ID), row.SealedDetails)
		if err != nil {
			r.log.Warn("requests: details do not open", "request", row.ID, "err", err)
			d.Details = "(unreadable: the account's data was deleted)"
		} else {
			d.Details = string(b)
		}
		out = append(out, d)
	}
	return out
}
