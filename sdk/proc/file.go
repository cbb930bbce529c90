package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/baepo/baepo/sdk"
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

// Install puts rel's artifact in place as the file dst, as Driver.Install
// must: it copies the artifact into a hidden file beside dst with
// CopyTemp, calls ready with that file's path (when ready is not nil: to
// check the copy, or to clear the way for it), renames it over dst and
// syncs the directory, so that a crash leaves the old file or the new one.
// When the copy or ready fails, dst is left as it was. It never changes
// rel.Artifact, which the agent keeps for rollback. sdk.Progress reports
// the copy; the result's message says what went where.
func Install(ctx context.Context, rel sdk.Release, dst string, ready func(tmp string) error) (sdk.Result, error) {
	dir := filepath.Dir(dst)
	sdk.Progress(ctx, fmt.Sprintf("copying %s to %s", rel.Artifact, dst))
	tmp, err := CopyTemp(ctx, rel.Artifact, dir)
	if err != nil {
		return sdk.Result{}, err
	}
	defer os.Remove(tmp) // after the rename, a no-op
	if ready != nil {
		if err := ready(tmp); err != nil {
			return sdk.Result{}, err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return sdk.Result{}, err
	}
	if err := SyncDir(dir); err != nil {
		return sdk.Result{}, err
	}
	return sdk.Result{Message: fmt.Sprintf("installed %s as %s", releaseName(rel), dst)}, nil
}

// releaseName names rel in a message: "release r42 (app.war)".
func releaseName(rel sdk.Release) string {
	switch {
	case rel.Name != "" && rel.ID != "":
		return fmt.Sprintf("release %s (%s)", rel.ID, rel.Name)
	case rel.ID != "":
		return "release " + rel.ID
	}
	return rel.Artifact
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
