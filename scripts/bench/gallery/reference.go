package main

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	_ "modernc.org/sqlite"

	"zimage/app/vault"
)

// The reference handler: what a careful programmer writes for this one
// route with the same libraries, and nothing else — no middleware, no
// request log, no metrics, no error mapping. It opens the same sealed
// prompts with the same keyring, so its answers are the real server's
// byte for byte (the run checks that).

const refPageColumns = `id, generation_id, idx, width, height, seed, content_type, bytes, has_webp,
	parameters_embedded, favourite, prompt, negative_prompt, steps, guidance, backend, model,
	queued_at, started_at, finished_at, created_at, expires_at`

type refImage struct {
	ID                 string     `json:"id"`
	GenerationID       string     `json:"generation_id"`
	Index              int        `json:"index"`
	Width              int        `json:"width"`
	Height             int        `json:"height"`
	Seed               int64      `json:"seed"`
	ContentType        string     `json:"content_type"`
	Bytes              int64      `json:"bytes"`
	HasWebP            bool       `json:"has_webp"`
	Prompt             string     `json:"prompt"`
	NegativePrompt     string     `json:"negative_prompt"`
	Steps              int        `json:"steps"`
	Guidance           float64    `json:"guidance"`
	Backend            string     `json:"backend"`
	Model              string     `json:"model"`
	Favourite          bool       `json:"favourite"`
	ParametersEmbedded bool       `json:"parameters_embedded"`
	CreatedAt          time.Time  `json:"created_at"`
	ExpiresAt          time.Time  `json:"expires_at"`
	DeletesInDays      int        `json:"deletes_in_days"`
	RenderMillis       int64      `json:"render_ms,omitempty"`
	WaitMillis         int64      `json:"wait_ms,omitempty"`
	BackendFinishedAt  *time.Time `json:"backend_finished_at,omitempty"`
	URLs               struct {
		Original string `json:"original"`
		WebP     string `json:"webp"`
		Thumb    string `json:"thumb"`
		Page     string `json:"page"`
	} `json:"urls"`
}

func serveReference(ctx context.Context, dir, addr string) error {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(5000)", "journal_mode(WAL)", "query_only(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "zimage.db")+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	n := max(4, 2*runtime.NumCPU())
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	keys, err := vault.Open(dir, "")
	if err != nil {
		return err
	}
	defer keys.Close()
	keyStmt, err := db.PrepareContext(ctx, `SELECT k.user_id, k.scopes, k.revoked_at, u.disabled_at, u.deleted_at
		FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.token_hash = ?`)
	if err != nil {
		return err
	}
	firstStmt, err := db.PrepareContext(ctx, `SELECT `+refPageColumns+` FROM images WHERE user_id = ?
		ORDER BY created_at DESC, id DESC LIMIT ?`)
	if err != nil {
		return err
	}
	afterStmt, err := db.PrepareContext(ctx, `SELECT `+refPageColumns+` FROM images WHERE user_id = ?
		AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?`)
	if err != nil {
		return err
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.GET("/api/v1/images", func(c echo.Context) error {
		ctx := c.Request().Context()
		scheme, token, _ := strings.Cut(c.Request().Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return echo.ErrUnauthorized
		}
		hash := sha256.Sum256([]byte(token))
		var userID, scopes string
		var revoked, disabled, deleted int64
		if err := keyStmt.QueryRowContext(ctx, hash[:]).Scan(&userID, &scopes, &revoked, &disabled, &deleted); err != nil {
			return echo.ErrUnauthorized
		}
		if revoked != 0 || disabled != 0 || deleted != 0 || !strings.Contains(","+scopes+",", ",read,") {
			return echo.ErrUnauthorized
		}
		limit := 50
		if v := c.QueryParam("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 100 {
				return echo.ErrBadRequest
			}
		}
		var rows *sql.Rows
		if cur := c.QueryParam("cursor"); cur == "" {
			rows, err = firstStmt.QueryContext(ctx, userID, limit+1)
		} else {
			ms, id, err := decodeRefCursor(cur)
			if err != nil {
				return echo.ErrBadRequest
			}
			rows, err = afterStmt.QueryContext(ctx, userID, ms, id, limit+1)
			if err != nil {
				return err
			}
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		now := time.Now().UTC()
		out := make([]refImage, 0, limit)
		next := ""
		for rows.Next() {
			if len(out) == limit {
				last := out[limit-1]
				next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.CreatedAt.UnixMilli(), 10) + "." + last.ID))
				break
			}
			var i refImage
			var prompt, negative []byte
			var queued, started, finished sql.NullInt64
			var created, expires int64
			if err := rows.Scan(&i.ID, &i.GenerationID, &i.Index, &i.Width, &i.Height, &i.Seed, &i.ContentType, &i.Bytes, &i.HasWebP,
				&i.ParametersEmbedded, &i.Favourite, &prompt, &negative, &i.Steps, &i.Guidance, &i.Backend, &i.Model,
				&queued, &started, &finished, &created, &expires); err != nil {
				return err
			}
			p, err := keys.Open(userID, []byte("images/"+i.ID+"/prompt"), prompt)
			if err != nil {
				return err
			}
			np, err := keys.Open(userID, []byte("images/"+i.ID+"/negative_prompt"), negative)
			if err != nil {
				return err
			}
			i.Prompt, i.NegativePrompt = string(p), string(np)
			i.CreatedAt, i.ExpiresAt = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
			if d := i.ExpiresAt.Sub(now).Hours() / 24; d > 0 {
				i.DeletesInDays = int(math.Ceil(d))
			}
			if started.Valid && finished.Valid && finished.Int64 >= started.Int64 {
				i.RenderMillis = finished.Int64 - started.Int64
			}
			if queued.Valid && started.Valid && started.Int64 >= queued.Int64 {
				i.WaitMillis = started.Int64 - queued.Int64
			}
			if finished.Valid {
				t := time.UnixMilli(finished.Int64).UTC()
				i.BackendFinishedAt = &t
			}
			base := "/api/v1/images/" + i.ID + "/file"
			i.URLs.Original, i.URLs.WebP, i.URLs.Thumb, i.URLs.Page = base+"?format=png", base+"?format=webp", base+"?size=thumb", "/images/"+i.ID
			out = append(out, i)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"images": out, "next": next})
	})
	srv := &http.Server{Addr: addr, Handler: e, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func decodeRefCursor(c string) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", err
	}
	ms, id, ok := strings.Cut(string(raw), ".")
	if !ok {
		return 0, "", errors.New("bad cursor")
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	return n, id, err
}
