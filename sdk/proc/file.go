package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Log line counts for LogTail.
const (
	DefaultLogLines = 100   // what LogTail returns when asked for no number
	MaxLogLines     = 10000 // the most LogTail returns
)

// LogTail returns the last lines of a driver's log the way Driver.Logs
// reports them: DefaultLogLines when lines <= 0, at most MaxLogLines, a
// final newline even when the last line is still being written, and, when
// the file does not exist yet, a line that says so instead of an error.
func LogTail(path string, lines int) (string, error) {
	if lines <= 0 {
		lines = DefaultLogLines
	}
	text, err := Tail(path, min(lines, MaxLogLines))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Sprintf("%s does not exist yet: the instance has not been started\n", path), nil
	}
	if err != nil {
		return "", err
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text, nil
}

// CopyTemp copies the regular file src into a new hidden file in dir
// (".baepo-*.tmp", a name app servers do not deploy), syncs it and returns
// its path. The caller checks it, renames it into place and syncs dir; on
// error nothing is left behind. A cancelled ctx stops the copy.
func CopyTemp(ctx context.Context, src, dir string) (path string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("open artifact: %w", err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil {
		return "", fmt.Errorf("open artifact: %w", err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("artifact %s is not a regular file", src)
	}
	out, err := os.CreateTemp(dir, ".baepo-*.tmp")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if _, err := io.Copy(out, ctxReader{ctx, in}); err != nil {
		return "", fmt.Errorf("copy artifact: %w", err)
	}
	if err := out.Chmod(0o644); err != nil {
		return "", err
	}
	if err := out.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", out.Name(), err)
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return out.Name(), nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
