package engine

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultFlowMemory is how much memory a run's flows may hold when
// Options.FlowMemory is not set.
const DefaultFlowMemory = 512 << 20

// memoryCheckEvery is how often a run's watchdog reads the heap.
const memoryCheckEvery = 5 * time.Millisecond

// bigAlloc is the size from which a primitive that is about to allocate
// looks at the heap too, not only at the limit.
const bigAlloc = 1 << 20

// flowMemoryError is the error of a flow that went over the memory limit.
type flowMemoryError struct{ limit int64 }

func (e *flowMemoryError) Error() string {
	return fmt.Sprintf("flow memory limit exceeded (%d MiB); BAEPO_FLOW_MEMORY raises it", e.limit>>20)
}

// heapBytes is what the process's heap holds: live objects and those the
// collector has not freed yet.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// memoryWatch bounds what the flows of a run allocate. gopher-lua has no
// allocator hook: a watchdog reads the heap every few milliseconds and,
// when it holds more than the limit after a collection, stops every Lua
// call running then (the flow fails with "flow memory limit exceeded" at
// its line). The primitives that can allocate much in one call
// (string.rep, string.format, table.concat, string.gsub) check the size
// before they allocate (see need). The heap is the process's: the limit is
// for all flows of a run together, and the baseline of the process counts.
type memoryWatch struct {
	limit  int64
	lastGC time.Time // when over last collected garbage
	mu     sync.Mutex
	calls  map[*context.CancelCauseFunc]struct{} // the Lua calls running now
}

func newMemoryWatch(limit int64) *memoryWatch {
	return &memoryWatch{limit: limit, calls: map[*context.CancelCauseFunc]struct{}{}}
}

// run watches the heap until ctx is done.
func (m *memoryWatch) run(ctx context.Context) {
	t := time.NewTicker(memoryCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.over() {
			m.stopCalls()
		}
	}
}

// over reports whether the heap holds more than the limit, garbage
// collected first.
func (m *memoryWatch) over() bool {
	if heapBytes() <= uint64(m.limit) {
		return false
	}
	// A collection of a heap this size takes a while: not more than
	// one every few ticks, or flows that just stopped would wait on them.
	if time.Since(m.lastGC) < 10*memoryCheckEvery {
		return false
	}
	runtime.GC()
	m.lastGC = time.Now()
	return heapBytes() > uint64(m.limit)
}

func (m *memoryWatch) stopCalls() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for cancel := range m.calls {
		(*cancel)(&flowMemoryError{m.limit})
	}
}

// enter returns the context of one Lua call under parent, which the
// watchdog cancels when the flows hold too much memory; leave ends it.
func (m *memoryWatch) enter(parent context.Context) (ctx context.Context, leave func()) {
	ctx, cancel := context.WithCancelCause(parent)
	m.mu.Lock()
	m.calls[&cancel] = struct{}{}
	m.mu.Unlock()
	return ctx, func() {
		m.mu.Lock()
		delete(m.calls, &cancel)
		m.mu.Unlock()
		cancel(nil)
	}
}

// need raises the flow memory error in L when what is about to allocate n
// bytes that would take the flows over limit.
func need(L *lua.LState, limit int64, what string, n uint64) {
	if n < bigAlloc {
		return
	}
	over := n > uint64(limit) || heapBytes()+n > uint64(limit)
	if over && n <= uint64(limit) {
		runtime.GC() // garbage does not count
		over = heapBytes()+n > uint64(limit)
	}
	if over {
		L.RaiseError("%s: %v", what, &flowMemoryError{limit})
	}
}
