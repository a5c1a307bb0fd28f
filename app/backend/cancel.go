package backend

import "context"

// FinishesOnCancel is implemented by adapters whose server may go on with
// a job after it was canceled, because its protocol has no way to stop
// work (the OpenAI images API, sd-server's sdapi). The queue then tells
// the person that the next image starts only when this one is done; the
// adapter's Generate returns only when the server has let go, so the slot
// stays busy as long as the server really is.
type FinishesOnCancel interface {
	FinishesOnCancel() bool
}

// httpFinishOnCancel returns a context for a request the server would go
// on with even if we hung up: canceling ctx does not end it, but ctx's
// deadline (the job's and the backend's timeouts) still does.
func httpFinishOnCancel(ctx context.Context) (context.Context, context.CancelFunc) {
	detached := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadlineCause(detached, deadline, httpErrJobTimeout)
	}
	return context.WithCancel(detached)
}
