package queue

import (
	"slices"
	"time"

	"zimage/app/backend"
)

// job is what the queue keeps in memory for a queued or running generation.
// The database is the source of truth; this is an index over it.
type job struct {
	id, userID     string
	backend, model string
	// exclude is the backend a retry should avoid.
	exclude    string
	enqueuedAt time.Time

	// waitTold records that the owner was told the job waits for a
	// backend to come up, so they are told once, not at every tick;
	// waitSince is when that wait began, for the log.
	waitTold  bool
	waitSince time.Time
	running   bool
	canceled  bool // by its owner; the row is already final
	cancel    func()
	move      func() // stops the job so it can be retried elsewhere (a stall)
	// stall says how the backend stopped reporting progress, while it has.
	stall string

	// For the log line of a failure: the backend and attempt of the latest
	// start, and when it began. secrets holds what the person typed while
	// the job runs, so no log line can carry it even if a server echoes it.
	ranOn     string
	attempt   int
	startedAt time.Time
	secrets   []string
	// on is the backend running it, nil while it waits.
	on backend.Backend
}

// userQueue is one person's waiting jobs, oldest first, and their running
// count.
type userQueue struct {
	userID  string
	fifo    []*job
	running int
	// served orders the ring: the user served longest ago goes first, and
	// 0 (never served) before anyone.
	served uint64
}

// index is the in-memory state the scheduler works on. It is not safe for
// concurrent use; Queue.mu guards it.
type index struct {
	jobs  map[string]*job
	users map[string]*userQueue
	// ring holds the users with queued jobs, least recently served first:
	// round robin in which a newcomer is next in line.
	ring       []*userQueue
	servedTick uint64
}

func newIndex() *index {
	return &index{jobs: map[string]*job{}, users: map[string]*userQueue{}}
}

func (x *index) user(userID string) *userQueue {
	u := x.users[userID]
	if u == nil {
		u = &userQueue{userID: userID}
		x.users[userID] = u
	}
	return u
}

// push adds j at the end of its owner's line, or at the front when it is
// a retry (it already waited its turn).
func (x *index) push(j *job, front bool) {
	x.jobs[j.id] = j
	u := x.user(j.userID)
	if front {
		u.fifo = slices.Insert(u.fifo, 0, j)
	} else {
		u.fifo = append(u.fifo, j)
	}
	if len(u.fifo) == 1 {
		i, _ := slices.BinarySearchFunc(x.ring, u.served, func(v *userQueue, served uint64) int {
			if v.served <= served {
				return -1 // after everyone served as long ago or earlier: FIFO among equals
			}
			return 1
		})
		x.ring = slices.Insert(x.ring, i, u)
	}
}

// remove takes a queued job out of its owner's line.
func (x *index) remove(j *job) {
	u := x.users[j.userID]
	if u == nil {
		return
	}
	if i := slices.Index(u.fifo, j); i >= 0 {
		u.fifo = slices.Delete(u.fifo, i, i+1)
	}
	if len(u.fifo) == 0 {
		if i := slices.Index(x.ring, u); i >= 0 {
			x.ring = slices.Delete(x.ring, i, i+1)
		}
	}
	if !j.running {
		delete(x.jobs, j.id)
	}
	x.forget(u)
}

// take marks the head job of u as running and moves u to the back of the
// ring.
func (x *index) take(u *userQueue) *job {
	j := u.fifo[0]
	u.fifo = u.fifo[1:]
	j.running = true
	u.running++
	x.servedTick++
	u.served = x.servedTick
	i := slices.Index(x.ring, u)
	x.ring = slices.Delete(x.ring, i, i+1)
	if len(u.fifo) > 0 {
		x.ring = append(x.ring, u)
	}
	return j
}

// finish forgets a job that stopped running.
func (x *index) finish(j *job) {
	delete(x.jobs, j.id)
	if u := x.users[j.userID]; u != nil {
		u.running--
		x.forget(u)
	}
}

// forget drops a user who has nothing queued or running; their turn in the
// ring is then as good as a newcomer's, which is fair: they wait for nothing.
func (x *index) forget(u *userQueue) {
	if len(u.fifo) == 0 && u.running <= 0 {
		delete(x.users, u.userID)
	}
}

// position returns how many jobs would start before j, plus one, if every
// job took the same time: each round of the ring starts one job per user.
// Caps and busy backends make the real order differ a little. 0 means j is
// not queued.
func (x *index) position(j *job) int {
	u := x.users[j.userID]
	if u == nil || j.running {
		return 0
	}
	k := slices.Index(u.fifo, j)
	if k < 0 {
		return 0
	}
	ahead := k
	before := true
	for _, v := range x.ring {
		if v == u {
			before = false
			continue
		}
		ahead += min(len(v.fifo), k)
		if before && len(v.fifo) > k {
			ahead++
		}
	}
	return ahead + 1
}

func (x *index) queued() int {
	n := 0
	for _, u := range x.ring {
		n += len(u.fifo)
	}
	return n
}
