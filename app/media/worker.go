package media

import (
	"context"
	"fmt"
	"os"

	"zimage/app"
	"zimage/app/sqlite"
)

// Start runs the derivative workers until ctx is done or Stop is called.
// They first look through the database for images still missing their
// WebP copy or thumbnail (left by a crash, or by a queue that was full).
func (s *Store) Start(ctx context.Context) {
	s.startOnce.Do(func() {
		s.rescan.Store(true)
		for range s.workers {
			s.wg.Add(1)
			go s.work(ctx)
		}
	})
}

// Stop lets the workers finish the queued work, then returns. Images left
// without derivatives (after a Stop that came while the database was being
// rescanned) are found again at the next Start.
func (s *Store) Stop() {
	s.stopOnce.Do(func() { close(s.quit) })
	s.wg.Wait()
}

// enqueue never blocks Save: when the queue is full the work is left to
// the database rescan.
func (s *Store) enqueue(k sqlite.ImageKey) {
	select {
	case <-s.quit:
		return
	default:
	}
	select {
	case s.jobs <- k:
	default:
		s.rescan.Store(true)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Store) work(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case k := <-s.jobs:
			s.derive(ctx, k)
			continue
		default:
		}
		if s.rescan.Swap(false) {
			s.rescanMissing(ctx)
			continue
		}
		select {
		case k := <-s.jobs:
			s.derive(ctx, k)
		case <-s.wake:
		case <-ctx.Done():
			return
		case <-s.quit:
			for {
				select {
				case k := <-s.jobs:
					s.derive(ctx, k)
				default:
					return
				}
			}
		}
	}
}

// rescanMissing makes the derivatives of every image that lacks them, in
// id order, stopping early on Stop.
func (s *Store) rescanMissing(ctx context.Context) {
	after := ""
	for {
		keys, err := s.db.ImagesMissingDerivatives(ctx, after, 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("media: find images missing derivatives", "err", err)
			}
			return
		}
		for _, k := range keys {
			select {
			case <-s.quit:
				return
			case <-ctx.Done():
				return
			default:
			}
			s.derive(ctx, k)
			after = k.ID
		}
		if len(keys) < 100 {
			return
		}
	}
}

// derive makes both derivatives of one image. A failure is logged and
// left for the next rescan (at the next Start); the thumbnail is also made
// on demand when someone asks for it.
func (s *Store) derive(ctx context.Context, k sqlite.ImageKey) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("media: panic while making derivatives", "image_id", k.ID, "panic", fmt.Sprint(r))
		}
	}()
	if _, err := s.makeDerivatives(ctx, k.UserID, k.ID, true); err != nil && app.ErrorCode(err) != app.ENOTFOUND && ctx.Err() == nil {
		s.log.Error("media: make derivatives", "user_id", k.UserID, "image_id", k.ID, "err", err)
	}
}

// makeDerivatives makes what image id lacks: the thumbnail, and the full
// WebP copy when withWebP. It returns the thumbnail's bytes when it made
// one. Everything happens under the image's lock, so a Delete cannot
// slip between a file write and its row update and leave an orphan.
func (s *Store) makeDerivatives(ctx context.Context, userID, id string, withWebP bool) ([]byte, error) {
	defer s.lock(id)()
	r, err := s.db.Image(ctx, userID, id)
	if err != nil {
		return nil, err
	}
	needWebP, needThumb := withWebP && !r.HasWebP, !r.HasThumb
	if !needWebP && !needThumb {
		return nil, nil
	}
	orig, err := s.readSealed(userID, id, variantOrig, r.Bytes)
	if err != nil {
		return nil, s.sealedError(userID, id, "original file", err)
	}
	m, err := decode(orig)
	if err != nil {
		return nil, app.Wrap(err, "Could not decode image %s to make its WebP copy and thumbnail.", id)
	}
	var webpData, thumb []byte
	if needWebP {
		if r.ContentType == "image/webp" {
			webpData = orig // stripped and marked when it was saved
		} else if webpData, err = encodeWebP(m, WebPQuality); err != nil {
			return nil, app.Wrap(err, "Could not encode the WebP copy of image %s.", id)
		} else if webpData, err = s.markDerivative(r.Model)(webpData); err != nil {
			return nil, app.Wrap(err, "Could not mark the WebP copy of image %s.", id)
		}
		if err := s.writeSealed(userID, id, variantWebP, webpData); err != nil {
			return nil, app.Wrap(err, "Could not store the WebP copy of image %s: check free space in the data folder.", id)
		}
	}
	if needThumb {
		if thumb, err = thumbnail(m, s.markDerivative(r.Model)); err != nil {
			return nil, app.Wrap(err, "Could not encode the thumbnail of image %s.", id)
		}
		if err := s.writeSealed(userID, id, variantThumb, thumb); err != nil {
			return nil, app.Wrap(err, "Could not store the thumbnail of image %s: check free space in the data folder.", id)
		}
	}
	// Durable before the row says the files exist.
	if err := syncDir(s.imageDir(userID, id)); err != nil {
		return nil, app.Wrap(err, "Could not store the derivatives of image %s.", id)
	}
	if needWebP {
		if err := s.recordDerivative(ctx, userID, id, variantWebP, s.db.SetImageWebP, int64(len(webpData))); err != nil {
			return nil, err
		}
	}
	if needThumb {
		if err := s.recordDerivative(ctx, userID, id, variantThumb, s.db.SetImageThumb, int64(len(thumb))); err != nil {
			return nil, err
		}
	}
	return thumb, nil
}

// recordDerivative updates the row; if the row vanished meanwhile (an
// account purge does not take image locks) the new file is removed so it
// does not outlive its image.
func (s *Store) recordDerivative(ctx context.Context, userID, id, variant string, set func(context.Context, string, int64) (bool, error), size int64) error {
	ok, err := set(ctx, id, size)
	if err != nil {
		return err
	}
	if !ok {
		os.Remove(s.path(userID, id, variant))
		return app.Errorf(app.ENOTFOUND, "Image %s was deleted while its %s was being made.", id, variant)
	}
	return nil
}
