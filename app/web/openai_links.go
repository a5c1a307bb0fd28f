package web

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"zimage/app"
	"zimage/app/sqlite"
)

// linkSecretSetting holds the key image links are signed with. It lives
// in the database, so links survive a restart and are void in another
// installation; a new key (delete the setting) voids every link at once.
const linkSecretSetting = "openai.link_secret"

// loadLinkSecret returns the link-signing key, making it on first use.
func loadLinkSecret(ctx context.Context, db *sqlite.DB) ([]byte, error) {
	v, err := db.Setting(ctx, linkSecretSetting)
	if err == nil {
		if key, derr := base64.RawStdEncoding.DecodeString(v); derr == nil && len(key) == 32 {
			return key, nil
		}
	} else if app.ErrorCode(err) != app.ENOTFOUND {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := db.SetSetting(ctx, linkSecretSetting, base64.RawStdEncoding.EncodeToString(key)); err != nil {
		return nil, err
	}
	return key, nil
}

// imageLink is what a signed link grants: one image of one person, in one
// format, until a moment.
type imageLink struct {
	userID, imageID, format string
	quality                 int
	expires                 time.Time
}

func (l imageLink) mac(key []byte) []byte {
	h := hmac.New(sha256.New, key)
	// Length-prefixed fields: no two different links sign the same bytes.
	for _, f := range []string{"zimage-image-link-v1", l.userID, l.imageID, l.format, strconv.Itoa(l.quality), strconv.FormatInt(l.expires.Unix(), 10)} {
		h.Write([]byte(strconv.Itoa(len(f)) + ":" + f))
	}
	return h.Sum(nil)
}

// signedImageURL is the response_format=url answer: a link that works
// without the API key until it expires, since clients hand it on to
// whatever shows the picture (a browser, a chat front end).
func (s *Server) signedImageURL(c echo.Context, l imageLink) string {
	q := url.Values{"u": {l.userID}, "f": {l.format}, "q": {strconv.Itoa(l.quality)},
		"e": {strconv.FormatInt(l.expires.Unix(), 10)}, "s": {base64.RawURLEncoding.EncodeToString(l.mac(s.linkKey))}}
	return s.absoluteURL(c, "/v1/images/files/"+url.PathEscape(l.imageID)+"?"+q.Encode())
}

// errBadLink is the one answer for a link that is forged, altered,
// expired or for an image deleted since: which of them is nobody's
// business but the signer's.
var errBadLink = app.Errorf(app.ENOTFOUND, "This image link is not valid or has expired. Links from response_format=url work for a limited time; generate the image again, or find it in your gallery.")

// imageLinkFile serves the image a signed link names, marked like every
// file Z Image serves.
func (s *Server) imageLinkFile(c echo.Context) error {
	q := c.QueryParams()
	exp, err1 := strconv.ParseInt(q.Get("e"), 10, 64)
	quality, err2 := strconv.Atoi(q.Get("q"))
	sig, err3 := base64.RawURLEncoding.DecodeString(q.Get("s"))
	if err1 != nil || err2 != nil || err3 != nil {
		return errBadLink
	}
	l := imageLink{userID: q.Get("u"), imageID: c.Param("id"), format: q.Get("f"), quality: quality, expires: time.Unix(exp, 0)}
	if !hmac.Equal(sig, l.mac(s.linkKey)) || !s.db.Now().Before(l.expires) {
		return errBadLink
	}
	data, ct, err := s.media.Encode(c.Request().Context(), l.userID, l.imageID, l.format, l.quality)
	if app.ErrorCode(err) == app.ENOTFOUND {
		return errBadLink
	} else if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "private, max-age="+strconv.Itoa(max(int(l.expires.Sub(s.db.Now()).Seconds()), 0)))
	h.Set("Content-Length", strconv.Itoa(len(data)))
	return c.Stream(http.StatusOK, ct, bytes.NewReader(data))
}
