package agent

import (
	"context"
	"fmt"

	"github.com/baepo/baepo/agent/tomcat"
	"github.com/baepo/baepo/engine/step"
	"github.com/baepo/baepo/sdk"
)

// leftoverCleaner is a driver that can remove what an interrupted install
// left in its app server's directories, such as the tomcat driver's
// half-copied WARs in webapps/. Plugins offer no such call: what they
// leave is theirs to clean.
type leftoverCleaner interface {
	CleanLeftovers(ctx context.Context, inst sdk.Instance) (removed []string, err error)
}

var _ leftoverCleaner = (*tomcat.Driver)(nil)

// recoverAtStart sets right, before the agent serves, what an agent killed
// during a step left on inst: the driver's leftovers of an interrupted
// install, and an interrupted install or rollback (recoverInstance). A
// failure is logged, not fatal: the intent stays, status reports it, and
// the next install or rollback recovers first.
func (a *Agent) recoverAtStart(ctx context.Context, d sdk.Driver, inst *instance) {
	log := a.log.With("instance", inst.String())
	if c, ok := d.(leftoverCleaner); ok {
		removed, err := c.CleanLeftovers(ctx, inst.spec)
		if err != nil {
			log.Error("remove what an interrupted install left", "error", err)
		}
		if len(removed) > 0 {
			log.Warn("removed what an interrupted install left", "files", removed)
		}
	}
	if err := a.recoverInstance(ctx, d, inst); err != nil {
		log.Error("recover an interrupted step; the next install or rollback tries again", "error", err)
	}
}

// recoverInstance finishes what an agent killed during an install or a
// rollback left: when the instance has an intent (release.Intent), it
// points the links as release.Recover decides and has the driver put that
// release in place again, so that current names what the app server has.
// It never starts or stops the instance. Without an intent it does nothing.
func (a *Agent) recoverInstance(ctx context.Context, d sdk.Driver, inst *instance) error {
	in, ok, err := inst.releases.Pending()
	if err != nil || !ok {
		return err
	}
	rel, err := inst.releases.Recover(in)
	if err != nil {
		return err
	}
	a.log.Warn("recovering an interrupted step: putting a release back in place", "instance", inst.String(),
		"step", in.Step, "interrupted_release", in.Current, "release", rel.ID)
	// The intent does not say how the step placed its release: the
	// service's deploy_mode does it again.
	srel := sdkRelease(rel)
	srel.Hot = inst.svc.cfg.DeployMode == ModeHot
	if _, err := d.Install(ctx, inst.spec, srel); err != nil {
		return fmt.Errorf("recover interrupted %s of release %s: put release %s back in place: %w", in.Step, in.Current, rel.ID, err)
	}
	return inst.releases.End()
}

// switching reports whether an install or a rollback holds inst, and so
// may have an intent of its own in flight.
func (i *instance) switching() bool {
	h := i.lockHolder()
	return h != nil && (h.Step == step.Install || h.Step == step.Rollback)
}
