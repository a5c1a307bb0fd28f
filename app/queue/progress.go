package queue

import (
	"time"

	"zimage/app/backend"
)

// progressEvery throttles progress events to about ten a second per job;
// the last step always goes out.
const progressEvery = 100 * time.Millisecond

// previewEvery throttles preview frames to four a second per job: about
// what a browser shows smoothly, and a bound on the base64 a slow phone
// must take in.
const previewEvery = 250 * time.Millisecond

// progressGate turns a backend's reports for one job into the events its
// owner gets. Steps and previews have their own limits, so a preview never
// uses up the slot of the step that follows it, a step held back by the
// limit goes out with the next report, and a report that knows no step yet
// (a preview before the first step) sends no empty progress event.
type progressGate struct {
	now          func() time.Time
	step, steps  int // the latest step reported
	sentStep     int
	sentSteps    int
	lastProgress time.Time
	lastPreview  time.Time
}

// events returns what to publish for p: a progress event, a preview
// event, both or neither (GenerationID left for the caller).
func (g *progressGate) events(p backend.Progress) []Event {
	now := g.now()
	if p.Steps > 0 {
		g.step, g.steps = p.Step, p.Steps
	}
	var out []Event
	changed := g.steps > 0 && (g.step != g.sentStep || g.steps != g.sentSteps)
	final := g.steps > 0 && g.step >= g.steps
	if changed && (final || now.Sub(g.lastProgress) >= progressEvery) {
		g.sentStep, g.sentSteps, g.lastProgress = g.step, g.steps, now
		out = append(out, Event{Type: EventProgress, Step: g.step, Steps: g.steps})
	}
	if len(p.Preview) > 0 && now.Sub(g.lastPreview) >= previewEvery {
		g.lastPreview = now
		out = append(out, Event{Type: EventPreview, Step: g.step, Steps: g.steps, Preview: p.Preview, PreviewType: p.PreviewType})
	}
	return out
}
