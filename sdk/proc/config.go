package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/baepo/baepo/sdk"
)

// AbsDir checks that p is an absolute path to a directory, for a config key
// that names one, and returns it cleaned. Its errors begin with p:
// "/srv/a1: directory does not exist".
func AbsDir(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("%s: not an absolute path", p)
	}
	p = filepath.Clean(p)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: directory does not exist", p)
	}
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s: not a directory", p)
	}
	return p, nil
}

// Dir reads inst's config key as the absolute path of a directory that
// exists (AbsDir). An absent or empty key is "", or an error when the key
// is required. Its errors begin with the key: "dir: missing",
// "dir: /srv/a1: directory does not exist".
func Dir(inst sdk.Instance, key string, required bool) (string, error) {
	p := inst.Config[key]
	if p == "" {
		if required {
			return "", fmt.Errorf("%s: missing", key)
		}
		return "", nil
	}
	p, err := AbsDir(p)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return p, nil
}

// Duration reads inst's config key as a positive Go duration ("30s",
// "1m30s"), def when the key is absent or empty. Its errors begin with the
// key: `stop_timeout: "soon": want a positive Go duration, like 30s`.
func Duration(inst sdk.Instance, key string, def time.Duration) (time.Duration, error) {
	s := inst.Config[key]
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s: %q: want a positive Go duration, like 30s", key, s)
	}
	return d, nil
}

// StateDir returns inst's state directory as an absolute path (a relative
// data_dir in agent.yaml makes it relative), for a step that keeps files
// there, such as a pid file. An instance without one is an error; the agent
// always gives one.
func StateDir(inst sdk.Instance) (string, error) {
	if inst.StateDir == "" {
		return "", errors.New("the instance has no state directory")
	}
	return filepath.Abs(inst.StateDir)
}
