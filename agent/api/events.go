package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// ContentTypeEvents is the content type of a step's event stream.
const ContentTypeEvents = "application/x-ndjson"

// maxEventLine bounds one line of an event stream.
const maxEventLine = 4 << 20

// ErrStreamCut is returned (wrapped) when a step's stream ends without a
// result or an error: the agent stopped while the step ran.
var ErrStreamCut = errors.New("the agent closed the stream before the step ended")

// EventWriter writes a step's events as JSON lines and flushes each one, so
// the client sees progress as it happens. It is safe for concurrent use.
type EventWriter struct {
	mu    sync.Mutex
	enc   *json.Encoder
	flush func() error
}

// NewEventWriter returns a writer of events to w; flush, when not nil, is
// called after every event.
func NewEventWriter(w io.Writer, flush func() error) *EventWriter {
	return &EventWriter{enc: json.NewEncoder(w), flush: flush}
}

// Send writes one event, stamped with the time when it has none.
func (w *EventWriter) Send(e Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := w.enc.Encode(e); err != nil {
		return err
	}
	if w.flush != nil {
		return w.flush()
	}
	return nil
}

// ReadStep reads a step's event stream to its end: progress events go to
// onEvent (when not nil); the last event's result is returned, or its error
// as an *Error. A stream that ends before either wraps [ErrStreamCut].
func ReadStep(r io.Reader, onEvent func(Event)) (StepResult, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return StepResult{}, fmt.Errorf("bad step event: %w", err)
		}
		switch {
		case ev.Result != nil:
			return *ev.Result, nil
		case ev.Error != nil:
			return StepResult{}, ev.Error
		case onEvent != nil:
			onEvent(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return StepResult{}, fmt.Errorf("%w: %v", ErrStreamCut, err)
	}
	return StepResult{}, ErrStreamCut
}
