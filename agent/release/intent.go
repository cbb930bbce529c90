package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/baepo/baepo/sdk/proc"
)

// intentFile, in the instance directory, holds the Intent of a switch that
// has begun and not ended.
const intentFile = "intent"

// Intent is a switch of current and previous that an install or a rollback
// has begun: the links move from (FromCurrent, FromPrevious) to (Current,
// Previous) and the driver puts Current in place. The two cannot change
// together, so the agent writes the intent before it touches either
// (Begin) and removes it when both are done (End) or both are undone
// (Undo). An intent that is still there when the agent starts means the
// agent died in between: the app server may hold either release, or half
// of one, whatever the links say; Recover says which release to put back.
type Intent struct {
	Step         string    `json:"step"`          // the step that switches: install or rollback
	Current      string    `json:"current"`       // the release the step makes current
	Previous     string    `json:"previous"`      // the release the step makes previous ("" none)
	FromCurrent  string    `json:"from_current"`  // current before the step ("" none)
	FromPrevious string    `json:"from_previous"` // previous before the step ("" none)
	Time         time.Time `json:"time"`          // when the step began
}

// PlanInstall returns the intent of making the staged release id current:
// the current release becomes previous, unless it is id itself or gone, in
// which case previous stays. It changes nothing.
func (r *Releases) PlanInstall(step, id string) (Intent, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.load(id); err != nil {
		return Intent{}, fmt.Errorf("plan %s: %w", step, err)
	}
	cur, prev, err := r.pair()
	if err != nil {
		return Intent{}, fmt.Errorf("plan %s of release %s: %w", step, id, err)
	}
	in := Intent{Step: step, Current: id, Previous: prev, FromCurrent: cur, FromPrevious: prev, Time: time.Now().UTC()}
	if cur != "" && cur != id && r.exists(cur) {
		in.Previous = cur
	}
	return in, nil
}

// PlanRollback returns the intent of going back to the previous release,
// and that release: it becomes current and the release staged before it
// becomes previous, or none. It changes nothing. The error wraps
// ErrNoPrevious if there is no previous release.
func (r *Releases) PlanRollback(step string) (Intent, Release, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur, prev, err := r.pair()
	if err != nil {
		return Intent{}, Release{}, fmt.Errorf("plan %s: %w", step, err)
	}
	if prev == "" {
		return Intent{}, Release{}, fmt.Errorf("plan %s: %w", step, ErrNoPrevious)
	}
	rel, err := r.load(prev)
	if err != nil {
		return Intent{}, Release{}, fmt.Errorf("plan %s: previous %w", step, err)
	}
	before, err := r.before(prev)
	if err != nil {
		return Intent{}, Release{}, fmt.Errorf("plan %s to %s: %w", step, prev, err)
	}
	return Intent{Step: step, Current: prev, Previous: before, FromCurrent: cur, FromPrevious: prev, Time: time.Now().UTC()}, rel, nil
}

// Begin records in durably (temp file, fsync, rename, fsync of the
// directory), so that an agent that dies at any later instant finds it;
// a crash during Begin leaves no intent or the whole of it (and at most a
// temp file, which Open removes), and links and app server as they were.
// It does not switch the links: the caller does, with Set.
func (r *Releases) Begin(in Intent) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("begin %s of release %s: %w", in.Step, in.Current, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := proc.WriteFileAtomic(filepath.Join(r.dir, intentFile), bytes.NewReader(append(data, '\n')), 0o644); err != nil {
		return fmt.Errorf("begin %s of release %s: write %s: %w", in.Step, in.Current, intentFile, err)
	}
	return nil
}

// Pending returns the intent of a switch that began and did not end; ok is
// false if there is none.
func (r *Releases) Pending() (in Intent, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending()
}

func (r *Releases) pending() (Intent, bool, error) {
	p := filepath.Join(r.dir, intentFile)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Intent{}, false, nil
	}
	if err != nil {
		return Intent{}, false, fmt.Errorf("read %s: %w", intentFile, err)
	}
	var in Intent
	if err := json.Unmarshal(data, &in); err != nil {
		// The agent writes it by rename, so only a disk fault or a hand
		// edit leaves it unreadable: say how to get out.
		return Intent{}, false, fmt.Errorf("read %s: %v: the release in place is unknown; remove %s and install a release", intentFile, err, p)
	}
	return in, true, nil
}

// End removes the intent: the switch is done, or undone.
func (r *Releases) End() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.Remove(filepath.Join(r.dir, intentFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("end switch: %w", err)
	}
	if err := proc.SyncDir(r.dir); err != nil {
		return fmt.Errorf("end switch: %w", err)
	}
	return nil
}

// Undo points the links back where in found them and removes the intent:
// for a step whose driver failed and left the app server as it was. A
// crash during Undo leaves the intent, for Recover.
func (r *Releases) Undo(in Intent) error {
	if err := r.Set(in.FromCurrent, in.FromPrevious); err != nil {
		return fmt.Errorf("undo %s of release %s: %w", in.Step, in.Current, err)
	}
	return r.End()
}

// Recover decides what to do about a switch that in began and a crash
// interrupted, points the links at that decision and returns the release
// the driver must put in place again (the app server may hold either
// release, or a half-copied one). It keeps the intent: the caller calls
// End once the driver has put rel in place, so a crash during recovery
// recovers again, the same way.
//
// The step never answered, so recovery undoes it: current and previous go
// back to FromCurrent and FromPrevious. When there is nothing to go back
// to (the instance's first install, or a FromCurrent that is gone) it
// completes the step instead: Current and Previous.
func (r *Releases) Recover(in Intent) (rel Release, err error) {
	r.mu.Lock()
	cur, prev := in.FromCurrent, in.FromPrevious
	if cur == "" || !r.exists(cur) {
		cur, prev = in.Current, in.Previous
	}
	if prev != "" && !r.exists(prev) {
		prev = ""
	}
	r.mu.Unlock()
	if err := r.Set(cur, prev); err != nil {
		return Release{}, fmt.Errorf("recover interrupted %s of release %s: %w", in.Step, in.Current, err)
	}
	rel, ok, err := r.Current()
	if err == nil && !ok {
		err = errors.New("current link is missing")
	}
	if err != nil {
		return Release{}, fmt.Errorf("recover interrupted %s of release %s: %w", in.Step, in.Current, err)
	}
	return rel, nil
}

// pair returns the ids current and previous point at ("" none). The caller
// holds r.mu.
func (r *Releases) pair() (cur, prev string, err error) {
	if cur, _, err = r.readLink(currentLink); err != nil {
		return "", "", err
	}
	if prev, _, err = r.readLink(previousLink); err != nil {
		return "", "", err
	}
	return cur, prev, nil
}

// before returns the id of the release staged just before id, or "". The
// caller holds r.mu.
func (r *Releases) before(id string) (string, error) {
	ids, err := r.ids()
	if err != nil {
		return "", err
	}
	before := ""
	for _, other := range ids {
		if other < id {
			before = other
		}
	}
	return before, nil
}
