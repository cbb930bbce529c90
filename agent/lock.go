package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gofrs/flock"
)

// lockName is the file in data_dir that a running agent holds locked
// (flock) and that names its pid. The lock, not the file, says the data
// dir is in use: the file stays when the agent ends.
const lockName = "agent.lock"

// DataDirInUseError is the error of [New] when another agent holds the
// data dir: two agents on one data_dir would share its journal, releases
// and store, each unaware of the other's steps.
type DataDirInUseError struct {
	Dir string // the data dir
	PID int    // the holder's, as its lock file says; 0 when unknown
}

func (e *DataDirInUseError) Error() string {
	holder := "another baepo-agent (pid unknown)"
	if e.PID > 0 {
		holder = "baepo-agent pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data_dir %s is in use by %s, which holds %s: stop that agent first, or give this one a data_dir of its own",
		e.Dir, holder, filepath.Join(e.Dir, lockName))
}

// lockDataDir takes the data dir's lock for this process, creating the dir
// if needed, and writes this process's pid into the lock file. It is the
// first thing an agent does to its data dir: an agent that does not get
// the lock has written nothing there. The lock ends with the returned
// lock's Close, or with the process.
func lockDataDir(dir string) (*flock.Flock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	path := filepath.Join(dir, lockName)
	// O_NOFOLLOW: a lock file planted as a symlink must not let the agent
	// truncate what it points at.
	l := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR|syscall.O_NOFOLLOW), flock.SetPermissions(0o644))
	ok, err := l.TryLock()
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("data_dir: %s is a symlink: remove it (the agent creates the file)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("data_dir: lock %s: %w", path, err)
	}
	if !ok {
		return nil, &DataDirInUseError{Dir: dir, PID: lockHolder(path)}
	}
	if err := writePID(path); err != nil {
		l.Close()
		return nil, fmt.Errorf("data_dir: write pid to %s: %w", path, err)
	}
	return l, nil
}

// writePID replaces the lock file's content with this process's pid.
func writePID(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// lockHolder reads the pid in the lock file; 0 when it holds none, as
// in the instant between another agent's lock and its write.
func lockHolder(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
