package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/baepo/baepo/sdk"
)

const (
	// defaultLogLines is what Logs returns when asked for no number.
	defaultLogLines = 100
	// maxLogLines caps what Logs returns.
	maxLogLines = 10000
	// maxTailBytes caps how far back tail reads, whatever the lines' length.
	maxTailBytes = 16 << 20
)

// Logs returns the last lines of logs/app.log (100 when lines <= 0, at most
// 10000). A missing app.log is not an error: the text says so.
func (d *Driver) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	c, err := parseConfig(inst)
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	if lines <= 0 {
		lines = defaultLogLines
	}
	lines = min(lines, maxLogLines)
	text, err := tail(c.logFile(), lines)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist yet: the instance has not been started\n", c.logFile()), nil
	}
	if err != nil {
		return "", fmt.Errorf("logs of instance %s: %w", instName(inst), err)
	}
	return text, nil
}

// tail returns the last n lines of the file at path, reading it backwards
// in blocks so that a big log costs no more than the lines asked for.
func tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	const block = 64 << 10
	var chunks [][]byte // read backwards: the last block first
	newlines, read := 0, int64(0)
	off := size
	// n lines need n newlines before the last line's end (not counting the
	// newline that usually ends the file).
	for off > 0 && read < maxTailBytes && newlines <= n {
		step := min(int64(block), off)
		off -= step
		chunk := make([]byte, step)
		if _, err := f.ReadAt(chunk, off); err != nil {
			return "", fmt.Errorf("read %s: %w", path, err)
		}
		chunks = append(chunks, chunk)
		newlines += bytes.Count(chunk, []byte("\n"))
		read += step
	}
	slices.Reverse(chunks)
	buf := bytes.Join(chunks, nil)
	body := bytes.TrimSuffix(buf, []byte("\n"))
	if len(body) == 0 {
		return "", nil
	}
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] == '\n' {
			n--
			if n == 0 {
				body = body[i+1:]
				break
			}
		}
	}
	return string(body) + "\n", nil
}
