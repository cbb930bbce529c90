package client

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/step"
)

// printPlan writes what a dry run found, batch by batch: per instance the
// steps it would run, what it runs now (the status the dry run read
// first) and what it would be given:
//
//	batch 1 of 2:
//	web01 A/a1: stop, install(artifact=app.war, mode=restart), start, health(timeout=1m30s)
//	  current: release 20260101T1200Z-1 (app-1.war), running, health ok
//	  installs: app.war sha256:9f86d08…
//
// First come the steps planned outside any instance ("targets: http.post
// https://chat/hooks/x"). digest hashes a local artifact, as the upload
// of the real run would.
func printPlan(w io.Writer, rep *engine.Report, code int, digest func(path string) (string, error)) {
	if len(rep.Planned) > 0 {
		steps := make([]string, len(rep.Planned))
		for i, s := range rep.Planned {
			steps[i] = planStep(s)
		}
		fmt.Fprintf(w, "targets: %s\n", strings.Join(steps, ", "))
	}
	batches := 0
	for _, ir := range rep.Instances {
		batches = max(batches, ir.Batch)
	}
	batch := 0
	for _, ir := range rep.Instances {
		if ir.Batch != batch {
			batch = ir.Batch
			fmt.Fprintf(w, "batch %d of %d:\n", batch, batches)
		}
		var each, rollback []string
		for _, s := range ir.Steps {
			switch s.Phase {
			case engine.PhasePlan:
			case "rollback":
				rollback = append(rollback, planStep(s))
			default:
				each = append(each, planStep(s))
			}
		}
		line := fmt.Sprintf("%s %s/%s: %s", ir.Server, ir.Service, ir.Name, strings.Join(each, ", "))
		if len(each) == 0 {
			line += "(no steps)"
		}
		if len(rollback) > 0 {
			line += "; rollback: " + strings.Join(rollback, ", ")
		}
		if ir.Result != engine.ResultOK {
			line += fmt.Sprintf(" [%s: %s]", ir.Result, instanceMessage(ir))
		}
		fmt.Fprintln(w, line)
		current := planCurrent(ir)
		if current != nil {
			fmt.Fprintf(w, "  current: %s\n", describeCurrent(current))
		}
		if installs := planInstalls(ir, current, digest); len(installs) > 0 {
			fmt.Fprintf(w, "  installs: %s\n", strings.Join(installs, "; "))
		}
	}
	fmt.Fprintf(w, "dry run of %s: %d %s in %d %s, nothing changed; exit %d\n", rep.Template,
		len(rep.Instances), plural(len(rep.Instances), "instance", "instances"), batches, plural(batches, "batch", "batches"), code)
}

// planStep is one step of a plan: its name and args, and its result
// unless it is planned or ok.
func planStep(s engine.StepRecord) string {
	out := s.Name + formatArgs(s.Args)
	if s.Result != engine.ResultPlanned && s.Result != engine.ResultOK {
		out += " [" + s.Result + "]"
	}
	return out
}

// planCurrent is what the status a dry run read before the instance's
// each returned; nil when it read none.
func planCurrent(ir engine.InstanceReport) map[string]any {
	for _, s := range ir.Steps {
		if s.Phase == engine.PhasePlan && s.Name == step.Status {
			return s.Output
		}
	}
	return nil
}

// describeCurrent says what an instance runs, from its status: "release
// 20260101T1200Z-1 (app-1.war), previous …, running, health ok".
func describeCurrent(st map[string]any) string {
	field := func(k string) string {
		if v, ok := st[k]; ok && v != "" {
			return headline(formatArg(v))
		}
		return ""
	}
	var parts []string
	switch rel, art := field("release"), field("artifact"); {
	case rel == "":
		parts = append(parts, "no release")
	case art != "":
		parts = append(parts, "release "+rel+" ("+art+")")
	default:
		parts = append(parts, "release "+rel)
	}
	if prev := field("previous"); prev != "" {
		parts = append(parts, "previous "+prev)
	}
	if st["running"] == true {
		parts = append(parts, "running")
	} else {
		parts = append(parts, "not running")
	}
	if h := field("health"); h != "" {
		parts = append(parts, "health "+h)
	}
	return strings.Join(parts, ", ")
}

// planInstalls says what the planned steps of each would make current: an
// install's artifact by name and sha256, a rollback's previous release
// (from current, the instance's status).
func planInstalls(ir engine.InstanceReport, current map[string]any, digest func(string) (string, error)) []string {
	var out []string
	for _, s := range ir.Steps {
		if s.Phase != "each" || s.Result != engine.ResultPlanned {
			continue
		}
		switch s.Name {
		case step.Install:
			art, ok := s.Args["artifact"].(engine.Artifact)
			if !ok {
				out = append(out, formatArg(s.Args["artifact"]))
				continue
			}
			sum := art.SHA256
			if art.URL == "" {
				var err error
				if sum, err = digest(art.Path); err != nil {
					sum = "unknown (" + err.Error() + ")"
				}
			}
			out = append(out, filepath.Base(cmp.Or(art.URL, art.Path))+" sha256:"+sum)
		case step.Rollback:
			if prev, _ := current["previous"].(string); prev != "" {
				out = append(out, "release "+prev+" (rollback)")
			} else {
				out = append(out, "nothing: no previous release to roll back to")
			}
		}
	}
	return out
}

// fileDigests returns a digest function for printPlan that hashes each
// local artifact once, as its upload would.
func fileDigests() func(path string) (string, error) {
	sums := map[string]string{}
	return func(path string) (string, error) {
		if sum, ok := sums[path]; ok {
			return sum, nil
		}
		sum, _, err := hashFile(path)
		if err == nil {
			sums[path] = sum
		}
		return sum, err
	}
}
