package queue

import (
	"fmt"
	"testing"
	"time"

	"zimage/app/backend"
)

func TestProgressGate(t *testing.T) {
	jpg := []byte{0xff, 0xd8, 0xff}
	type report struct {
		at time.Duration
		p  backend.Progress
	}
	tests := []struct {
		name    string
		reports []report
		want    []string // "progress 1/8", "preview 1/8"
	}{
		{
			name: "a preview before the first step sends no empty progress",
			reports: []report{
				{0, backend.Progress{Preview: jpg}},
				{10 * time.Millisecond, backend.Progress{Step: 1, Steps: 8}},
			},
			want: []string{"preview 0/0", "progress 1/8"},
		},
		{
			name: "the preview of a step does not use up that step's progress",
			reports: []report{
				{0, backend.Progress{Step: 1, Steps: 8}},
				{300 * time.Millisecond, backend.Progress{Step: 2, Steps: 8, Preview: jpg}},
				{310 * time.Millisecond, backend.Progress{Step: 2, Steps: 8}},
				{320 * time.Millisecond, backend.Progress{Step: 3, Steps: 8}},
				{450 * time.Millisecond, backend.Progress{Step: 3, Steps: 8, Preview: jpg}},
			},
			want: []string{"progress 1/8", "progress 2/8", "preview 2/8", "progress 3/8"},
		},
		{
			name: "previews at most four a second, the last step always",
			reports: []report{
				{0, backend.Progress{Step: 1, Steps: 3, Preview: jpg}},
				{50 * time.Millisecond, backend.Progress{Step: 2, Steps: 3, Preview: jpg}},
				{260 * time.Millisecond, backend.Progress{Step: 2, Steps: 3, Preview: jpg}},
				{270 * time.Millisecond, backend.Progress{Step: 3, Steps: 3, Preview: jpg}},
			},
			want: []string{"progress 1/3", "preview 1/3", "progress 2/3", "preview 2/3", "progress 3/3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var now time.Time
			g := progressGate{now: func() time.Time { return now }}
			var got []string
			for _, r := range tt.reports {
				now = start.Add(r.at)
				for _, e := range g.events(r.p) {
					got = append(got, fmt.Sprintf("%s %d/%d", e.Type, e.Step, e.Steps))
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("events %q, want %q", got, tt.want)
				}
			}
		})
	}
}
