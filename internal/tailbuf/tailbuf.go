// Package tailbuf keeps the end of what a process writes: the agent's
// allow-listed commands report their last output, however much they print.
package tailbuf

import (
	"bytes"
	"sync"
)

// Buffer keeps the last Max bytes written to it (all of them when Max is
// 0). It is safe for a process's stdout and stderr to write at once.
type Buffer struct {
	Max int
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer; it never fails.
func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - t.Max; t.Max > 0 && over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

// String returns what the buffer keeps.
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
