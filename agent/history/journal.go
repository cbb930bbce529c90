package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/baepo/baepo/sdk/proc"
)

// Results the journal itself writes; the agent writes "ok" and "failed".
const (
	ResultRunning     = "running"     // begun, not finished
	ResultInterrupted = "interrupted" // the agent stopped while the step ran
)

// interruptedMessage is the message of the finish record Open writes for a
// step the agent never finished.
const interruptedMessage = "agent stopped while the step ran"

// ErrClosed is returned (wrapped) by Begin and Finish after Close.
var ErrClosed = errors.New("history journal is closed")

// Record kinds, the "op" of a line.
const (
	opBegin  = "begin"
	opFinish = "finish"
)

// record is one line of the journal file.
type record struct {
	Op string `json:"op"`

	// begin
	Entry *Entry `json:"entry,omitempty"`

	// finish
	ID       int64         `json:"id,omitempty"`
	Time     time.Time     `json:"time,omitzero"` // when the step finished
	Result   string        `json:"result,omitempty"`
	Message  string        `json:"message,omitempty"`
	Release  string        `json:"release,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// Entry is one step in the journal, as it is stored on disk: the begin
// record holds it whole, the finish record fills in Result, Message,
// Release and Duration.
type Entry struct {
	ID       int64         `json:"id"`
	Time     time.Time     `json:"time"` // when the step began
	Service  string        `json:"service"`
	Instance string        `json:"instance"`
	Step     string        `json:"step"`
	Release  string        `json:"release,omitempty"`
	Result   string        `json:"result"` // ok, failed, interrupted, running
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Build    Build         `json:"build"`
	User     string        `json:"user,omitempty"`
}

// Build identifies the CI build that ordered a step.
type Build struct {
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url,omitempty"`
	Job    string `json:"job,omitempty"`
	Number string `json:"number,omitempty"`
}

// Filter selects journal entries; zero fields match everything.
type Filter struct {
	Service, Instance, Step string
	Since                   time.Time // entries that began at or after Since
	Limit                   int       // at most this many, newest first; 0 = all
}

// Journal is an open history file. It is safe for concurrent use.
type Journal struct {
	path string

	mu      sync.RWMutex
	f       *os.File      // nil after Close
	entries []Entry       // in ID order
	index   map[int64]int // ID → position in entries
	nextID  int64
	torn    bool // a failed write may have left a partial line
}

// Open opens the journal at path, creating it and its directory. It loads
// every entry, drops a last line a crash cut short, and appends an
// "interrupted" finish record for every step that began and never finished.
func Open(path string) (*Journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	j := &Journal{path: path, f: f, index: map[int64]int{}, nextID: 1}
	if err := j.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	if err := proc.SyncDir(filepath.Dir(path)); err != nil { // the file may be new
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	if err := j.finishInterrupted(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open history %s: %w", path, err)
	}
	return j, nil
}

// load reads the file into memory. A line that does not parse is skipped;
// a last line without its newline is cut off if it does not parse, and
// completed if it does, so the next append starts on a line of its own.
func (j *Journal) load() error {
	br := bufio.NewReaderSize(j.f, 64<<10)
	var good int64 // offset just past the last complete line
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			good += int64(len(line))
			j.apply(line)
			continue
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("read: %w", err)
		}
		if len(line) == 0 {
			return nil
		}
		// The last line has no newline: a write the agent did not finish.
		if j.apply(line) {
			if _, err := j.f.Write([]byte("\n")); err != nil {
				return fmt.Errorf("complete the last line: %w", err)
			}
		} else if err := j.f.Truncate(good); err != nil {
			return fmt.Errorf("cut off a partial last line: %w", err)
		}
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("sync: %w", err)
		}
		return nil
	}
}

// apply merges one line into memory and reports whether it was a record.
func (j *Journal) apply(line []byte) bool {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return false
	}
	var r record
	if err := json.Unmarshal(line, &r); err != nil {
		return false
	}
	switch {
	case r.Op == opBegin && r.Entry != nil:
		j.add(*r.Entry)
	case r.Op == opFinish:
		j.finish(r)
	default:
		return false
	}
	return true
}

func (j *Journal) add(e Entry) {
	if _, dup := j.index[e.ID]; dup || e.ID <= 0 {
		return
	}
	e.Result, e.Message, e.Duration = ResultRunning, "", 0
	j.index[e.ID] = len(j.entries)
	j.entries = append(j.entries, e)
	j.nextID = max(j.nextID, e.ID+1)
}

func (j *Journal) finish(r record) {
	j.nextID = max(j.nextID, r.ID+1)
	i, ok := j.index[r.ID]
	if !ok {
		return
	}
	e := &j.entries[i]
	e.Result, e.Message, e.Duration = r.Result, r.Message, r.Duration
	if r.Release != "" {
		e.Release = r.Release
	}
}

// finishInterrupted appends a finish record for every running entry.
func (j *Journal) finishInterrupted() error {
	var buf []byte
	var recs []record
	now := time.Now().UTC()
	for _, e := range j.entries {
		if e.Result != ResultRunning {
			continue
		}
		r := record{Op: opFinish, ID: e.ID, Time: now, Result: ResultInterrupted, Message: interruptedMessage}
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode finish record of entry %d: %w", e.ID, err)
		}
		buf = append(append(buf, line...), '\n')
		recs = append(recs, r)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := j.write(buf); err != nil {
		return fmt.Errorf("finish %d interrupted steps: %w", len(recs), err)
	}
	for _, r := range recs {
		j.finish(r)
	}
	return nil
}

// write appends lines and syncs the file. If an earlier write failed part
// way, it starts on a fresh line so the fragment cannot swallow the record.
func (j *Journal) write(lines []byte) error {
	if j.f == nil {
		return ErrClosed
	}
	if j.torn {
		lines = append([]byte("\n"), lines...)
	}
	if _, err := j.f.Write(lines); err != nil {
		j.torn = true
		return err
	}
	j.torn = false
	return j.f.Sync()
}

func (j *Journal) writeRecord(r record) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return j.write(append(line, '\n'))
}

// Begin records that a step started and returns its entry's ID. IDs
// increase, also across restarts. A zero e.Time means now; e.ID, Result,
// Message and Duration are set by the journal.
func (j *Journal) Begin(e Entry) (int64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.ID = j.nextID
	j.nextID++ // never reused, even if the write below fails half-way
	e.Result, e.Message, e.Duration = ResultRunning, "", 0
	if err := j.writeRecord(record{Op: opBegin, Entry: &e}); err != nil {
		return 0, fmt.Errorf("record the start of step %s on %s/%s: %w", e.Step, e.Service, e.Instance, err)
	}
	j.add(e)
	return e.ID, nil
}

// Finish records how step id ended: its result ("ok", "failed",
// "interrupted"), a message, the release it left current ("" = unchanged)
// and how long it ran.
func (j *Journal) Finish(id int64, result, message, release string, d time.Duration) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	i, ok := j.index[id]
	if !ok {
		return fmt.Errorf("record the end of history entry %d: no such entry", id)
	}
	if e := j.entries[i]; e.Result != ResultRunning {
		return fmt.Errorf("record the end of history entry %d (%s on %s/%s): already finished as %s", id, e.Step, e.Service, e.Instance, e.Result)
	}
	r := record{Op: opFinish, ID: id, Time: time.Now().UTC(), Result: result, Message: message, Release: release, Duration: d}
	if err := j.writeRecord(r); err != nil {
		return fmt.Errorf("record the end of history entry %d: %w", id, err)
	}
	j.finish(r)
	return nil
}

// List returns the entries that match f, newest first.
func (j *Journal) List(f Filter) ([]Entry, error) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	var out []Entry
	for i := len(j.entries) - 1; i >= 0; i-- {
		e := j.entries[i]
		if (f.Service != "" && e.Service != f.Service) ||
			(f.Instance != "" && e.Instance != f.Instance) ||
			(f.Step != "" && e.Step != f.Step) ||
			(!f.Since.IsZero() && e.Time.Before(f.Since)) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out, nil
}

// Close closes the journal file. List still answers from memory; Begin and
// Finish fail with ErrClosed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	if err != nil {
		return fmt.Errorf("close history %s: %w", j.path, err)
	}
	return nil
}
