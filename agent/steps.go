package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/artifact"
	"github.com/baepo/baepo/agent/balancer"
	"github.com/baepo/baepo/agent/history"
	"github.com/baepo/baepo/agent/release"
	"github.com/baepo/baepo/engine/step"
	"github.com/baepo/baepo/internal/crashpoint"
	"github.com/baepo/baepo/sdk"
)

// Step runs one step on one instance: it checks the step and its
// arguments, takes the service's lease for the run and the instance's lock
// when the step changes the instance, runs it through the driver with
// history and metrics, and releases both before it returns. Progress lines
// go to progress as they come. An error that refused the step before it ran
// is an *api.Error; a step that ran and failed returns its own error.
func (a *Agent) Step(ctx context.Context, service, instance, name string, req api.StepRequest, progress func(string)) (api.StepResult, error) {
	inst, err := a.lookup(service, instance)
	if err != nil {
		return api.StepResult{}, err
	}
	if err := a.checkStep(inst, name, req.Args); err != nil {
		return api.StepResult{}, err
	}
	log := a.log.With("instance", inst.String(), "step", name)
	return a.lockedStep(ctx, inst, name, req, func(msg string) {
		log.Info(msg)
		if progress != nil {
			progress(msg)
		}
	})
}

// lockedStep takes the service lease and the instance lock, runs the step
// with history and metrics, and releases them before it returns, so the
// client's next step never finds its own run holding the instance.
func (a *Agent) lockedStep(ctx context.Context, inst *instance, name string, req api.StepRequest, progress func(string)) (api.StepResult, error) {
	info := step.Of(name)
	if info.Changes {
		me := api.Lock{Run: req.Run, Step: name, Build: req.Build, User: req.User, Since: time.Now().UTC()}
		// Every step that changes an instance goes through the lease, with
		// a run id or without: see service.acquire.
		holder, ok := inst.svc.acquire(me, time.Now())
		if !ok {
			return api.StepResult{}, &api.Error{Code: api.CodeBusy, Holder: holder,
				Message: fmt.Sprintf("service %s is busy: %s has changed it since %s; wait for it to end", inst.svc.name, leaseHolder(holder), holder.Since.Format(time.RFC3339))}
		}
		defer inst.svc.done(req.Run, time.Now())
		holder, ok = inst.tryLock(me)
		if !ok {
			return api.StepResult{}, &api.Error{Code: api.CodeBusy, Holder: holder,
				Message: fmt.Sprintf("%s is busy: %s since %s (%s)", inst, holder.Step, holder.Since.Format(time.RFC3339), describeHolder(holder))}
		}
		defer inst.unlock()
	}
	log := a.log.With("instance", inst.String(), "step", name)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(a.cfg.StepTimeout))
	defer cancel()
	ctx = sdk.WithProgress(ctx, progress)

	// The journal has the step before the log says it started: an agent
	// killed after that line leaves an entry to mark interrupted.
	start := time.Now()
	var id int64
	if info.Journaled {
		var err error
		id, err = a.journal.Begin(history.Entry{Time: start.UTC(), Service: inst.spec.Service, Instance: inst.spec.Name, Step: name, Build: history.Build(req.Build), User: req.User, Run: req.Run})
		if err != nil {
			return api.StepResult{}, fmt.Errorf("history: %w", err)
		}
	}
	log.Info("step started", "build", req.Build.Tag)
	res, err := a.runStep(ctx, inst, name, req.Args)
	err = a.drivers.Explain(inst.svc.cfg.Driver, err)
	res.Duration = time.Since(start)
	result := "ok"
	if err != nil {
		result = "failed"
		if ctx.Err() != nil {
			result = "interrupted"
		}
	}
	a.metrics.steps.WithLabelValues(name, result).Inc()
	a.metrics.stepSeconds.WithLabelValues(name).Observe(res.Duration.Seconds())
	if info.Journaled {
		msg := res.Message
		if err != nil {
			msg = err.Error()
		}
		// A journal that cannot be written must not hide the step's own
		// result: log it and go on.
		if jerr := a.journal.Finish(id, result, firstLine(msg), res.Release, res.Duration); jerr != nil {
			log.Error("history: finish", "error", jerr)
		}
	}
	if err != nil {
		log.Error("step "+result, "took", res.Duration.Round(time.Millisecond), "error", err)
		return res, err
	}
	log.Info("step ok", "took", res.Duration.Round(time.Millisecond), "message", res.Message)
	return res, nil
}

// leaseHolder names who holds a service's lease, for messages.
func leaseHolder(l *api.Lock) string {
	if l.Run == "" {
		return "a step without a run id (" + describeHolder(l) + ")"
	}
	return "another run (" + describeHolder(l) + ")"
}

func describeHolder(l *api.Lock) string {
	switch {
	case l.Build.Tag != "":
		return "build " + l.Build.Tag
	case l.Build.Job != "":
		return "build " + l.Build.Job + "#" + l.Build.Number
	case l.User != "":
		return "user " + l.User
	case l.Run == "":
		return "no build, no user"
	default:
		return "a run outside Jenkins"
	}
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// checkStep refuses, before anything runs, a step the instance does not
// offer, an install whose artifact the agent cannot get and a command that
// is not allow-listed or not given the arguments it takes.
func (a *Agent) checkStep(inst *instance, name string, args map[string]any) error {
	if !validName(name) {
		return api.Errorf(api.CodeBadRequest, "bad step name %q", name)
	}
	custom := slices.ContainsFunc(inst.svc.desc.Steps, func(s sdk.StepInfo) bool { return s.Name == name })
	if !step.IsCore(name) && !custom {
		return api.UnknownStep(name, inst.String(), step.Core(), inst.svc.desc.Name, inst.svc.steps())
	}
	switch name {
	case step.Install, step.Rollback:
		if _, err := a.modeArg(inst, name, args); err != nil {
			return err
		}
	}
	switch name {
	case step.Install:
		ref, err := artifactArg(args)
		if err != nil {
			return err
		}
		if _, ok, err := a.store.Has(ref.SHA256); err != nil {
			return err
		} else if !ok && ref.URL == "" {
			return api.Errorf(api.CodeNotFound, "artifact sha256:%s is not on this agent: upload it first (PUT /v1/artifacts/sha256/%s)", ref.SHA256, ref.SHA256)
		}
	case step.Health:
		if _, err := healthTimeout(args, 0); err != nil {
			return err
		}
	case step.Drain, step.Undrain:
		if inst.lb == nil {
			return api.NoBalancer(name, inst.String())
		}
	case step.Run:
		name, _ := args["command"].(string)
		if _, err := api.FindCommand(a.Commands(), name); err != nil {
			return err
		}
		if _, err := a.cfg.commands[name].values(args); err != nil {
			return err
		}
	}
	return nil
}

// modeArg reads the "mode" argument of install and rollback: "hot" or
// "restart", the service's deploy_mode when not given. Hot needs a driver
// that can hot deploy.
func (a *Agent) modeArg(inst *instance, name string, args map[string]any) (string, error) {
	raw, ok := args["mode"]
	if !ok || raw == nil {
		return inst.svc.cfg.DeployMode, nil
	}
	mode, _ := raw.(string)
	switch mode {
	case ModeRestart:
		return mode, nil
	case ModeHot:
		if !inst.svc.desc.HotDeploy {
			return "", api.NoHotDeploy(name, inst.String(), inst.svc.desc.Name)
		}
		return mode, nil
	}
	return "", api.Errorf(api.CodeBadRequest, "%s: args.mode %v is not a mode: hot or restart", name, raw)
}

// artifactArg reads the "artifact" argument of install.
func artifactArg(args map[string]any) (api.ArtifactRef, error) {
	var ref api.ArtifactRef
	raw, err := json.Marshal(args["artifact"])
	if err == nil {
		err = json.Unmarshal(raw, &ref)
	}
	if err != nil || !artifact.ValidDigest(ref.SHA256) {
		return ref, api.Errorf(api.CodeBadRequest, "install: args.artifact must be {\"sha256\": \"<64 hex>\", \"name\": \"app.war\"} or {\"url\": ..., \"sha256\": ...}")
	}
	if ref.URL != "" && !strings.HasPrefix(ref.URL, "http://") && !strings.HasPrefix(ref.URL, "https://") {
		return ref, api.Errorf(api.CodeBadRequest, "install: artifact URL %q must be http or https", ref.URL)
	}
	return ref, nil
}

// runStep dispatches one step.
func (a *Agent) runStep(ctx context.Context, inst *instance, name string, args map[string]any) (api.StepResult, error) {
	switch name { // the balancer's steps need no driver
	case step.Drain:
		return fromBalancer(name, inst)(inst.lb.Drain(ctx, inst.lb.drainTimeout))
	case step.Undrain:
		return fromBalancer(name, inst)(inst.lb.Undrain(ctx, inst.lb.undrainTimeout))
	}
	d, err := a.driver(ctx, inst.svc)
	if err != nil {
		return api.StepResult{}, err
	}
	if step.Of(name).Resets {
		inst.health.forget(name)
	}
	switch name {
	case step.Stop:
		return fromResult(d.Stop(ctx, inst.spec))
	case step.Start:
		return fromResult(d.Start(ctx, inst.spec))
	case step.Restart:
		if _, err := d.Stop(ctx, inst.spec); err != nil {
			return api.StepResult{}, fmt.Errorf("restart %s: %w", inst, err)
		}
		return fromResult(d.Start(ctx, inst.spec))
	case step.Install, step.Rollback:
		mode, err := a.modeArg(inst, name, args)
		if err != nil {
			return api.StepResult{}, err
		}
		if name == step.Rollback {
			return a.rollback(ctx, d, inst, mode == ModeHot)
		}
		return a.install(ctx, d, inst, args, mode == ModeHot)
	case step.Health:
		return a.health(ctx, d, inst, args)
	case step.Status:
		return a.status(ctx, inst)
	case step.Logs:
		lines := 100
		if v, ok := args["lines"].(float64); ok && v > 0 {
			lines = min(int(v), 10000)
		}
		text, err := d.Logs(ctx, inst.spec, lines)
		if err != nil {
			return api.StepResult{}, fmt.Errorf("logs %s: %w", inst, err)
		}
		return api.StepResult{Output: map[string]any{"text": text}}, nil
	case step.Run:
		return a.runCommand(ctx, inst, args)
	}
	sargs := map[string]string{}
	for k, v := range args {
		sargs[k] = fmt.Sprint(v)
	}
	return fromResult(d.Step(ctx, inst.spec, name, sargs))
}

// fromBalancer makes the step result of a drain or undrain; an error is
// the balancer's answer.
func fromBalancer(name string, inst *instance) func(balancer.Result, error) (api.StepResult, error) {
	return func(res balancer.Result, err error) (api.StepResult, error) {
		if err != nil {
			return api.StepResult{}, fmt.Errorf("%s %s: %w", name, inst, err)
		}
		return api.StepResult{Message: res.Message, Output: res.Output}, nil
	}
}

func fromResult(res sdk.Result, err error) (api.StepResult, error) {
	if err != nil {
		return api.StepResult{}, err
	}
	out := make(map[string]any, len(res.Output))
	for k, v := range res.Output {
		out[k] = v
	}
	return api.StepResult{Message: res.Message, Output: out}, nil
}

// install stages a release from the artifact, makes it current and has the
// driver put it in place, as one switch (switchTo). If the driver fails,
// current and previous are restored: nothing is half-changed.
func (a *Agent) install(ctx context.Context, d sdk.Driver, inst *instance, args map[string]any, hot bool) (api.StepResult, error) {
	ref, err := artifactArg(args)
	if err != nil {
		return api.StepResult{}, err
	}
	if err := a.recoverInstance(ctx, d, inst); err != nil {
		return api.StepResult{}, fmt.Errorf("install %s: %w", inst, err)
	}
	if ref.URL != "" {
		if _, ok, _ := a.store.Has(ref.SHA256); !ok {
			sdk.Progress(ctx, "downloading "+ref.URL)
			n, err := a.store.Fetch(ctx, a.client, ref.URL, ref.SHA256, int64(a.cfg.MaxArtifact))
			if err != nil {
				return api.StepResult{}, fmt.Errorf("install %s: %w", inst, err)
			}
			a.metrics.uploadBytes.Add(float64(n))
		}
	}
	path, err := a.store.Verify(ctx, ref.SHA256) // no link, no altered file reaches the app server
	if err != nil {
		return api.StepResult{}, fmt.Errorf("install %s: %w", inst, err)
	}
	name := ref.Name
	if name == "" {
		name = ref.SHA256[:12] + ".war"
	}
	holder := inst.lockHolder()
	meta := release.Meta{SHA256: ref.SHA256, Name: name, Time: time.Now().UTC()}
	if holder != nil {
		meta.Build, meta.User = release.Build(holder.Build), holder.User
	}
	rel, err := inst.releases.Stage(path, meta)
	if err != nil {
		return api.StepResult{}, fmt.Errorf("install %s: stage release: %w", inst, err)
	}
	in, err := inst.releases.PlanInstall(step.Install, rel.ID)
	if err != nil {
		return api.StepResult{}, fmt.Errorf("install %s: %w", inst, err)
	}
	res, err := a.switchTo(ctx, d, inst, in, rel, hot)
	if err != nil {
		return api.StepResult{}, fmt.Errorf("install %s: %w", inst, err)
	}
	if removed, err := inst.releases.Prune(inst.svc.cfg.KeepReleases); err != nil {
		sdk.Progress(ctx, "prune old releases: "+err.Error())
	} else if len(removed) > 0 {
		sdk.Progress(ctx, fmt.Sprintf("pruned %d old releases", len(removed)))
	}
	out, _ := fromResult(res, nil)
	out.Release = rel.ID
	out.Output["release"] = rel.ID
	out.Output["previous"] = in.FromCurrent
	if out.Message == "" {
		out.Message = "installed " + name + " as release " + rel.ID
	}
	return out, nil
}

// rollback makes the previous release current and has the driver put it in
// place, as one switch (switchTo); if the driver fails, the releases are
// restored.
func (a *Agent) rollback(ctx context.Context, d sdk.Driver, inst *instance, hot bool) (api.StepResult, error) {
	if err := a.recoverInstance(ctx, d, inst); err != nil {
		return api.StepResult{}, fmt.Errorf("rollback %s: %w", inst, err)
	}
	in, rel, err := inst.releases.PlanRollback(step.Rollback)
	if err != nil {
		return api.StepResult{}, fmt.Errorf("rollback %s: %w", inst, err)
	}
	if err := rel.Verify(ctx); err != nil { // no link, no altered file reaches the app server
		return api.StepResult{}, fmt.Errorf("rollback %s: %w", inst, err)
	}
	if _, err := a.switchTo(ctx, d, inst, in, rel, hot); err != nil {
		return api.StepResult{}, fmt.Errorf("rollback %s: %w", inst, err)
	}
	return api.StepResult{
		Message: fmt.Sprintf("rolled back from %s to %s (%s)", in.FromCurrent, rel.ID, rel.Meta.Name),
		Release: rel.ID,
		Output:  map[string]any{"release": rel.ID, "from": in.FromCurrent},
	}, nil
}

// switchTo carries out the switch in (rel is its release, in.Current): it
// records the intent, points current and previous at their new releases,
// has the driver put rel in place (hot: beside the running release, see
// sdk.Release.Hot) and ends the intent. If the driver
// fails, the links go back and the intent ends. An agent killed at any
// instant in between leaves the intent, and recoverInstance sets things
// right when the agent starts again.
func (a *Agent) switchTo(ctx context.Context, d sdk.Driver, inst *instance, in release.Intent, rel release.Release, hot bool) (sdk.Result, error) {
	if err := inst.releases.Begin(in); err != nil {
		return sdk.Result{}, err
	}
	crashpoint.At(in.Step + "-intent")
	if err := inst.releases.Set(in.Current, in.Previous); err != nil {
		return sdk.Result{}, errors.Join(err, inst.releases.Undo(in))
	}
	crashpoint.At(in.Step + "-switched")
	srel := sdkRelease(rel)
	srel.Hot = hot
	res, err := d.Install(ctx, inst.spec, srel)
	if err != nil {
		if uerr := inst.releases.Undo(in); uerr != nil {
			err = errors.Join(err, fmt.Errorf("restore releases: %w", uerr))
		}
		return sdk.Result{}, err
	}
	crashpoint.At(in.Step + "-placed")
	if err := inst.releases.End(); err != nil {
		return sdk.Result{}, err
	}
	return res, nil
}

func currentPair(r *release.Releases) (cur, prev string) {
	if c, ok, _ := r.Current(); ok {
		cur = c.ID
	}
	if p, ok, _ := r.Previous(); ok {
		prev = p.ID
	}
	return cur, prev
}

func sdkRelease(r release.Release) sdk.Release {
	return sdk.Release{ID: r.ID, Artifact: r.Artifact, Name: r.Meta.Name, SHA256: r.Meta.SHA256}
}

// status reports the driver's view plus releases, health and lock.
func (a *Agent) status(ctx context.Context, inst *instance) (api.StepResult, error) {
	d, err := a.driver(ctx, inst.svc)
	if err != nil {
		return api.StepResult{}, err
	}
	st, err := d.Status(ctx, inst.spec)
	if err != nil {
		return api.StepResult{}, fmt.Errorf("status %s: %w", inst, err)
	}
	out := map[string]any{"running": st.Running, "port": inst.spec.Port, "driver": inst.svc.cfg.Driver}
	if st.PID > 0 {
		out["pid"] = st.PID
	}
	cur, prev := currentPair(inst.releases)
	msg := "stopped"
	if st.Running {
		msg = "running pid " + strconv.Itoa(st.PID)
	}
	if cur != "" {
		out["release"] = cur
		if c, ok, _ := inst.releases.Current(); ok {
			out["artifact"] = c.Meta.Name
			msg += ", release " + cur + " (" + c.Meta.Name + ")"
		}
	}
	if prev != "" {
		out["previous"] = prev
	}
	// An install or rollback in flight has an intent too: it is not one a
	// crash left.
	if in, ok, _ := inst.releases.Pending(); ok && !inst.switching() {
		out["interrupted"] = in.Step + " of release " + in.Current
		msg += ", interrupted " + in.Step + " not yet recovered (see the agent's log; the next install or rollback recovers first)"
	}
	if rels, err := inst.releases.List(); err == nil && len(rels) > 0 {
		ids := make([]string, len(rels))
		for i, r := range rels {
			ids[i] = r.ID
		}
		out["releases"] = ids
	}
	// A broken link is said outright, not shown as no release.
	if probs := inst.releases.Problems(); len(probs) > 0 {
		out["problem"] = strings.Join(probs, "; ")
		msg += ", PROBLEM: " + out["problem"].(string)
	}
	msg += ", health " + inst.health.report(st.Running, out)
	if l := inst.lockHolder(); l != nil {
		out["locked_by"] = l.Step + " (" + describeHolder(l) + ")"
	}
	if inst.lb != nil {
		msg += ", " + balancerStatus(ctx, inst.lb, out)
	}
	return api.StepResult{Message: msg, Output: out}, nil
}

// balancerStatus adds the instance's balancer to a status step's output,
// and its state in HAProxy when it can be read at once; it returns what
// the message says of it.
func balancerStatus(ctx context.Context, lb *lbConfig, out map[string]any) string {
	out["balancer"] = lb.Kind()
	h, ok := lb.Balancer.(*balancer.HAProxy)
	if !ok {
		return "balancer " + lb.String()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := h.State(ctx)
	if err != nil {
		out["balancer_status"] = "unknown: " + err.Error()
		return "balancer " + lb.String() + " unknown"
	}
	out["balancer_status"], out["balancer_in_flight"] = st.Status, st.InFlight()
	msg := "balancer " + lb.String() + " " + st.Status
	if drained, err := h.Drained(ctx); err == nil {
		out["balancer_drained"] = drained
		if drained && st.Status != "DRAIN" {
			msg += " (drained)"
		}
	}
	return msg
}
