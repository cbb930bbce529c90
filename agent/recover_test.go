package agent

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/release"
)

// restart closes the agent, as a crash would leave its data dir, and
// starts a new one on the same config with driver d.
func (f *coreFixture) restart(d *fakeDriver) {
	f.t.Helper()
	f.agent.Close()
	a, err := New(context.Background(), f.agent.cfg, slog.New(slog.DiscardHandler), Builtin{"fake": d}, "test")
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { a.Close() })
	f.agent, f.driver = a, d
}

// interrupt leaves A/a1 as an agent killed during an install of digest
// leaves it: the release staged, the intent written and, when switched,
// the links moved; the driver never finished.
func (f *coreFixture) interrupt(digest string, switched bool) release.Intent {
	f.t.Helper()
	inst := f.agent.services["A"].instances["a1"]
	path, err := f.agent.store.Path(digest)
	if err != nil {
		f.t.Fatal(err)
	}
	rel, err := inst.releases.Stage(path, release.Meta{SHA256: digest, Name: "app-new.war"})
	if err != nil {
		f.t.Fatal(err)
	}
	in, err := inst.releases.PlanInstall("install", rel.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := inst.releases.Begin(in); err != nil {
		f.t.Fatal(err)
	}
	if switched {
		if err := inst.releases.Set(in.Current, in.Previous); err != nil {
			f.t.Fatal(err)
		}
	}
	return in
}

// TestRecoverAtStart: an agent that starts after one was killed during an
// install puts the release it returns to back in place through the driver
// before it serves, so status names what the app server has; it does not
// start the instance.
func TestRecoverAtStart(t *testing.T) {
	for _, tt := range []struct {
		name     string
		first    bool // the interrupted install is the instance's first
		switched bool
	}{
		{name: "killed before the switch", switched: false},
		{name: "killed after the switch", switched: true},
		{name: "killed during the first install", first: true, switched: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newCore(t)
			v1, v2 := f.upload("v1"), f.upload("v2")
			var res1 string
			if !tt.first {
				res, err := f.install(v1, "app-1.war")
				if err != nil {
					t.Fatal(err)
				}
				res1 = res.Release
			}
			in := f.interrupt(v2, tt.switched)

			f.restart(&fakeDriver{})
			want := res1
			if tt.first {
				want = in.Current
			}
			if len(f.driver.installed) != 1 || f.driver.installed[0].ID != want {
				t.Fatalf("at start the driver installed %+v, want release %s once", f.driver.installed, want)
			}
			st := f.status()
			if st["release"] != want || st["interrupted"] != nil || st["running"] != false {
				t.Errorf("status after recovery = %v, want release %s, not running, nothing interrupted", st, want)
			}
			if _, err := os.Stat(filepath.Join(f.agent.cfg.DataDir, "instances", "A", "a1", "intent")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the intent is still there: %v", err)
			}
			// The next deploy works.
			if res, err := f.install(v2, "app-2.war"); err != nil || f.driver.last().ID != res.Release {
				t.Errorf("install after recovery = %+v, %v", res, err)
			}
		})
	}
}

// TestRecoverFailsAtStart: an agent whose driver cannot put the release
// back still starts; status says the step is not recovered, and the next
// install recovers first.
func TestRecoverFailsAtStart(t *testing.T) {
	f := newCore(t)
	v1, v2, v3 := f.upload("v1"), f.upload("v2"), f.upload("v3")
	res1, err := f.install(v1, "app-1.war")
	if err != nil {
		t.Fatal(err)
	}
	in := f.interrupt(v2, true)

	broken := &fakeDriver{failInstall: errors.New("webapps is read-only")}
	f.restart(broken)
	res := f.statusResult()
	if res.Output["interrupted"] != "install of release "+in.Current || !strings.Contains(res.Message, "interrupted install not yet recovered") {
		t.Errorf("status = %q %v, want the interrupted install", res.Message, res.Output)
	}

	f.driver.fail(nil)
	res3, err := f.install(v3, "app-3.war")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.driver.installed) != 2 || f.driver.installed[0].ID != res1.Release || f.driver.installed[1].ID != res3.Release {
		t.Errorf("driver installed %+v, want %s (recovery) then %s", f.driver.installed, res1.Release, res3.Release)
	}
	if st := f.status(); st["release"] != res3.Release || st["previous"] != res1.Release || st["interrupted"] != nil {
		t.Errorf("status = %v, want release %s, previous %s", st, res3.Release, res1.Release)
	}
}

// TestStatusDuringInstall: the intent of an install in flight is not
// reported as one a crash left.
func TestStatusDuringInstall(t *testing.T) {
	f := newCore(t)
	v1, v2 := f.upload("v1"), f.upload("v2")
	if _, err := f.install(v1, "app-1.war"); err != nil {
		t.Fatal(err)
	}
	inst := f.agent.services["A"].instances["a1"]
	if _, ok := inst.tryLock(api.Lock{Step: "install"}); !ok {
		t.Fatal("A/a1 is locked")
	}
	f.interrupt(v2, true)
	if st := f.status(); st["interrupted"] != nil {
		t.Errorf("status during an install = %v, want nothing interrupted", st)
	}
	inst.unlock()
	if st := f.status(); st["interrupted"] == nil {
		t.Errorf("status with an intent and no step = %v, want it interrupted", st)
	}
}
