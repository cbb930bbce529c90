// Package proc holds the process and file plumbing that baepo's drivers
// share: pid files, whether a pid is alive, stopping a process with SIGTERM
// and then SIGKILL, starting a process detached with its output appended to
// a log, finding an instance's process and adopting one whose pid file was
// lost, installing an artifact by atomic rename, atomic file writes, the
// end of a log, and reading directory and duration config keys. On these
// it builds Driver's Start, Stop, Install, Status and Logs for a driver
// whose instance is one process (Instances).
//
// It is Linux-only (it reads /proc and signals through pidfds). Besides the
// standard library it imports only package sdk, for the instances it reads
// and the results it returns, so a driver plugin can use it without pulling
// in the rest of baepo. It knows no particular app server.
package proc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// KillWait bounds how long Terminate and Kill wait for a process to go
// after SIGKILL.
const KillWait = 10 * time.Second

// PollInterval is how often a wait looks at a process or a file.
const PollInterval = 20 * time.Millisecond

// SettleTime is how long the in-tree drivers watch a new process before
// they call its start a success (Start's settle): a JVM that cannot start
// (a bad option, a corrupt JAR, a port in use) dies within it.
const SettleTime = time.Second

// ErrBadPIDFile is wrapped by ReadPID's error for a pid file that does not
// hold a pid.
var ErrBadPIDFile = errors.New("pid file does not hold a pid")

// ReadPID returns the pid in the pid file at path: a positive decimal
// number, white space around it allowed. The error wraps fs.ErrNotExist
// when there is no file, and ErrBadPIDFile when it holds no pid.
func ReadPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: %w", path, ErrBadPIDFile)
	}
	return pid, nil
}

// WritePID records pid in the pid file at path, as a line, with
// WriteFileAtomic (mode 0644). It creates path's directory when missing.
func WritePID(path string, pid int) error {
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = WriteFileAtomic(path, strings.NewReader(strconv.Itoa(pid)+"\n"), 0o644)
	}
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

// RemovePID removes the pid file at path. A missing file is no error.
func RemovePID(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove pid file: %w", err)
	}
	return nil
}

// WriteFileAtomic replaces the file at path with r's bytes, so that a crash
// leaves the old file or the new one, never half of one: it writes a
// hidden temporary file (.baepo-*.tmp, which servlet containers' deployers
// ignore) in path's directory, sets its mode to perm, syncs it, renames it
// over path and syncs the directory. The directory must exist.
func WriteFileAtomic(path string, r io.Reader, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".baepo-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = io.Copy(tmp, r)
	if err := errors.Join(err, tmp.Chmod(perm), tmp.Sync(), tmp.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// OwnDir makes the directory dir if it is missing (its parent must
// exist), and refuses it, saying how to fix it, if it is a symlink or no
// directory: a directory the caller cleans or writes into must not lead it
// through a link to files it does not own.
func OwnDir(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		fi, err = os.Lstat(dir) // made meanwhile, maybe as something else
	}
	switch {
	case err != nil:
		return err
	case fi.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(dir)
		return fmt.Errorf("%s is a symlink to %s: baepo writes and deletes files there and follows no link to do it; remove the link (baepo makes the directory)", dir, target)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory: remove it (baepo makes the directory)", dir)
	}
	return nil
}

// SyncDir syncs the directory dir, which makes a rename in it durable. A
// file system that cannot sync directories is no error.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Alive reports whether pid is a process that has not exited. A zombie,
// which has exited but not yet been reaped by its parent, has exited: it
// runs no code and holds no files or ports. A pid <= 0 is never alive.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	// The state is the field after the command name, which is in
	// parentheses and may itself hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X', 'x':
			return false
		}
	}
	return true
}

// Cmdline returns the arguments pid runs with, from /proc/<pid>/cmdline.
// The kernel empties the command line of a process that is exiting.
func Cmdline(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(data), "\x00"), "\x00"), nil
}

// TerminateOptions tune Terminate. The zero value, or nil, is fine.
type TerminateOptions struct {
	// Owns, when set, is asked whether pid is still the process to stop
	// once Terminate holds it through a pidfd (a pid read from a pid file
	// may have been reused since). When it says no, Terminate leaves the
	// process alone and returns false, nil.
	Owns func(pid int) bool
	// Progress, when set, is told what Terminate does, as it does it.
	Progress func(msg string)
}

// Terminate stops pid: it sends SIGTERM, waits up to timeout for the
// process to exit, then sends SIGKILL and waits up to KillWait. When ctx
// is done before the process exits it sends SIGKILL at once, rather than
// leave the process half-stopped, and returns an error that wraps
// ctx.Err(). It signals through a pidfd, so a signal never reaches another
// process that reuses the pid, and it counts a zombie as exited. killed
// reports whether it sent SIGKILL. A pid that is not alive is no error.
func Terminate(ctx context.Context, pid int, timeout time.Duration, opts *TerminateOptions) (killed bool, err error) {
	if opts == nil {
		opts = &TerminateOptions{}
	}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, args...))
		}
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false, fmt.Errorf("find pid %d: %w", pid, err)
	}
	defer p.Release()
	// Look again now that p holds the process.
	if !Alive(pid) || (opts.Owns != nil && !opts.Owns(pid)) {
		return false, nil
	}
	progress("sending SIGTERM to pid %d; waiting up to %s for it to exit", pid, timeout)
	if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, fmt.Errorf("signal pid %d: %w", pid, err)
	}
	if waitExit(ctx, p, pid, timeout) == nil {
		return false, nil
	}
	if ctx.Err() != nil {
		progress("stop cancelled: sending SIGKILL to pid %d", pid)
	} else {
		progress("pid %d did not exit within %s: sending SIGKILL", pid, timeout)
	}
	if err := kill(p, pid); err != nil {
		return true, err
	}
	if ctx.Err() != nil {
		return true, fmt.Errorf("wait for pid %d: %w (killed it)", pid, ctx.Err())
	}
	return true, nil
}

// Kill sends SIGKILL to pid through a pidfd and waits up to KillWait for it
// to exit. A pid that is not alive is no error.
func Kill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("find pid %d: %w", pid, err)
	}
	defer p.Release()
	if !Alive(pid) {
		return nil
	}
	return kill(p, pid)
}

func kill(p *os.Process, pid int) error {
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if err := waitExit(context.Background(), p, pid, KillWait); err != nil {
		return fmt.Errorf("wait for pid %d after SIGKILL: %w", pid, err)
	}
	return nil
}

// waitExit polls until p has exited, timeout has passed or ctx is done.
func waitExit(ctx context.Context, p *os.Process, pid int, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		// With a pidfd, ErrProcessDone means p is gone for good; a zombie
		// counts as gone.
		if err := p.Signal(syscall.Signal(0)); errors.Is(err, os.ErrProcessDone) || !Alive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return fmt.Errorf("timeout after %s", timeout)
		case <-tick.C:
		}
	}
}

// Launch starts cmd detached: in a session of its own (setsid), so that it
// outlives the caller and ignores the caller's terminal and signals, with
// stdout and stderr appended to the file at logPath, which it creates,
// with its directory, when missing. Make cmd with exec.Command, not
// exec.CommandContext: the process is meant to outlive the call.
//
// The returned channel receives cmd.Wait's result once the process has
// exited and been reaped. While the caller lives it is the parent and
// reaps the process; when the caller goes, init inherits it.
func Launch(cmd *exec.Cmd, logPath string) (<-chan error, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	defer log.Close() // the process has its own copy
	cmd.Stdout, cmd.Stderr = log, log
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, nil
}

// FailTail is how many lines of the log WithLogTail adds to an error.
const FailTail = 20

// WithLogTail returns err followed by the last FailTail lines of the log at
// path, for a process that failed to start; err alone when the log is
// missing or empty.
func WithLogTail(err error, path string) error {
	lines, _ := Tail(path, FailTail)
	if strings.TrimSpace(lines) == "" {
		return err
	}
	return fmt.Errorf("%w; last lines of %s:\n%s", err, path, strings.TrimRight(lines, "\n"))
}

// Start launches cmd with Launch, records its pid in the pid file at
// pidPath with WritePID, and watches the process for settle, so that one
// that cannot start (a JVM with a bad option, or whose port is taken), and
// so exits within it, is an error that ends with the log's last lines
// (WithLogTail). When ctx is done first, Start kills the process. A failed
// Start leaves no process and no pid file behind; a successful one leaves
// the process running (and reaps it, should it exit while the caller
// lives).
func Start(ctx context.Context, cmd *exec.Cmd, logPath, pidPath string, settle time.Duration) (pid int, err error) {
	exited, err := Launch(cmd, logPath)
	if err != nil {
		return 0, err
	}
	pid = cmd.Process.Pid
	if err := WritePID(pidPath, pid); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return 0, err
	}
	settled := time.NewTimer(settle)
	defer settled.Stop()
	select {
	case <-settled.C:
		return pid, nil
	case err = <-exited:
		err = WithLogTail(fmt.Errorf("pid %d exited right after start (%v)", pid, err), logPath)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-exited
		err = fmt.Errorf("pid %d: %w (killed it)", pid, ctx.Err())
	}
	return 0, errors.Join(err, RemovePID(pidPath))
}

// HasArg reports whether pid runs with arg among its command-line
// arguments: a check that a pid from a pid file is still the process that
// wrote it. A reused pid lacks the argument, and so does a process that is
// exiting, whose command line the kernel empties.
func HasArg(pid int, arg string) bool {
	args, err := Cmdline(pid)
	return err == nil && slices.Contains(args, arg)
}

// maxTailBytes caps how far back Tail reads, whatever the lines' length.
const maxTailBytes = 16 << 20

// Tail returns the last n lines of the file at path, as they are in the
// file (the last one without a newline when the file does not end with
// one). It reads the file backwards in 64 KiB blocks, so that a big log
// costs no more than the lines asked for, and at most 16 MiB, so that the
// first line it returns may be the end of a longer one. A missing file is
// an error that wraps fs.ErrNotExist.
func Tail(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if n <= 0 {
		return "", nil
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", err
	}
	var chunks [][]byte // the last block first
	newlines, read := 0, int64(0)
	// n lines need n newlines before the last line's end (not counting the
	// newline that usually ends the file).
	for off > 0 && read < maxTailBytes && newlines <= n {
		step := min(64<<10, off)
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
	for i := len(body) - 1; i >= 0; i-- {
		if body[i] == '\n' {
			if n--; n == 0 {
				return string(buf[i+1:]), nil
			}
		}
	}
	return string(buf), nil
}
