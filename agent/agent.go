package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/agent/artifact"
	"github.com/baepo/baepo/agent/history"
	"github.com/baepo/baepo/agent/release"
	"github.com/baepo/baepo/agent/tomcat"
	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// Agent is the state of one baepo-agent: its config, stores and services.
type Agent struct {
	cfg      *Config
	log      *slog.Logger
	version  string
	store    *artifact.Store
	journal  *history.Journal
	drivers  DriverSource
	services map[string]*service
	metrics  *metrics
	client   *http.Client // health probes and artifact downloads
	lock     *flock.Flock // on data_dir; nil once closed
}

// DriverSource hands out the driver of a name. The built-in source knows
// tomcat; the plugin host ([Plugins]) adds plugins.
type DriverSource interface {
	// Driver returns the driver of name, starting it if it is a plugin.
	Driver(ctx context.Context, name string) (sdk.Driver, error)
	// Names lists the drivers the source can hand out.
	Names() []string
	// Plugins lists the plugins the source knows; nil when it has none.
	Plugins() []api.Plugin
	// Explain turns the error of a call to driver name into one that says
	// what happened to the driver, such as a plugin that exited.
	Explain(name string, err error) error
	// Close stops every driver process the source started.
	Close()
}

// Builtin is the DriverSource of the drivers compiled into the agent.
type Builtin map[string]sdk.Driver

// NewBuiltin returns the built-in drivers: tomcat.
func NewBuiltin() Builtin { return Builtin{"tomcat": tomcat.New()} }

// Driver implements DriverSource.
func (b Builtin) Driver(ctx context.Context, name string) (sdk.Driver, error) {
	d, ok := b[name]
	if !ok {
		return nil, fmt.Errorf("unknown driver %q (built in: %v; others are plugins in plugins_dir)", name, b.Names())
	}
	return d, nil
}

// Names implements DriverSource.
func (b Builtin) Names() []string { return sortedKeys(b) }

// Plugins implements DriverSource: built-in drivers are no plugins.
func (b Builtin) Plugins() []api.Plugin { return nil }

// Explain implements DriverSource: a built-in driver's error says it all.
func (b Builtin) Explain(_ string, err error) error { return err }

// Close implements DriverSource: built-in drivers run in the agent.
func (b Builtin) Close() {}

type service struct {
	name      string
	cfg       *ServiceConfig
	desc      sdk.Description
	instances map[string]*instance

	mu    sync.Mutex
	lease *lease // the run that holds the service; nil when free
}

// lease is a run's hold on a service: no other run's step may change any
// of its instances while it lasts.
type lease struct {
	holder api.Lock
	active int       // steps of the run in flight
	idle   time.Time // when the last of them ended
}

// acquire takes or renews the service's lease for the run of l, and counts
// one more step in flight; it returns the holder when another run has it.
// Steps without a run id (l.Run == "") share one lease among themselves,
// held only while one of them is in flight: they cannot change a service
// another run holds, nor a run one they are changing.
func (s *service) acquire(l api.Lock, now time.Time) (*api.Lock, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.lease; cur != nil && cur.holder.Run != l.Run && (cur.active > 0 || now.Sub(cur.idle) < api.LeaseTTL) {
		h := cur.holder
		return &h, false
	}
	if s.lease == nil || s.lease.holder.Run != l.Run {
		s.lease = &lease{holder: l}
	}
	s.lease.active++
	return nil, true
}

// done counts a step of run as ended.
func (s *service) done(run string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease != nil && s.lease.holder.Run == run {
		s.lease.active--
		s.lease.idle = now
		if run == "" && s.lease.active == 0 {
			s.lease = nil // no run to come back: nothing to keep it for
		}
	}
}

// release ends run's lease, if it holds one.
func (s *service) release(run string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lease != nil && s.lease.holder.Run == run {
		s.lease = nil
		return true
	}
	return false
}

type instance struct {
	svc      *service
	spec     sdk.Instance
	releases *release.Releases
	lb       *lbConfig // nil: no balancer, no drain

	mu     sync.Mutex
	holder *api.Lock // nil when free

	health healthState
}

// New locks the data dir, opens the agent's stores and checks every
// instance against its driver. Errors name the config key at fault; a data
// dir another agent holds is a [*DataDirInUseError], and then New has
// written nothing.
func New(ctx context.Context, cfg *Config, logger *slog.Logger, drivers DriverSource, version string) (*Agent, error) {
	a := &Agent{cfg: cfg, log: logger, version: version, drivers: drivers, services: map[string]*service{}, metrics: newMetrics(), client: &http.Client{}}
	var err error
	// The lock comes first: nothing (journal recovery, temp cleaning) may
	// touch a data dir another agent is using.
	if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if a.store, err = artifact.Open(filepath.Join(cfg.DataDir, "artifacts")); err != nil {
		return nil, errors.Join(fmt.Errorf("data_dir: %w", err), a.Close())
	}
	if a.journal, err = history.Open(filepath.Join(cfg.DataDir, "history.jsonl")); err != nil {
		return nil, errors.Join(fmt.Errorf("data_dir: %w", err), a.Close())
	}
	for _, sname := range sortedKeys(cfg.Services) {
		scfg := cfg.Services[sname]
		d, err := drivers.Driver(ctx, scfg.Driver)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("services.%s.driver: %w", sname, err), a.Close())
		}
		desc, err := d.Describe(ctx)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("services.%s.driver: describe %s: %w", sname, scfg.Driver, err), a.Close())
		}
		if err := checkDeployMode(scfg, desc); err != nil {
			return nil, errors.Join(fmt.Errorf("services.%s.%w", sname, err), a.Close())
		}
		svc := &service{name: sname, cfg: scfg, desc: desc, instances: map[string]*instance{}}
		// The releases below are cleaned at start: no link on the way.
		for _, d := range []string{filepath.Join(cfg.DataDir, "instances"), filepath.Join(cfg.DataDir, "instances", sname)} {
			if err := proc.OwnDir(d); err != nil {
				return nil, errors.Join(fmt.Errorf("data_dir: %w", err), a.Close())
			}
		}
		for _, iname := range sortedKeys(scfg.instances) {
			spec := scfg.instances[iname]
			spec.StateDir = filepath.Join(cfg.DataDir, "instances", sname, iname)
			if err := checkConfigKeys(desc, spec); err != nil {
				return nil, errors.Join(fmt.Errorf("services.%s.instances.%s.%w", sname, iname, err), a.Close())
			}
			if err := d.Validate(ctx, spec); err != nil {
				return nil, errors.Join(fmt.Errorf("services.%s.instances.%s.%w", sname, iname, err), a.Close())
			}
			rels, err := release.Open(spec.StateDir)
			if err != nil {
				return nil, errors.Join(fmt.Errorf("services.%s.instances.%s: %w", sname, iname, err), a.Close())
			}
			inst := &instance{svc: svc, spec: spec, releases: rels, lb: scfg.balancers[iname]}
			a.recoverAtStart(ctx, d, inst)
			svc.instances[iname] = inst
		}
		a.services[sname] = svc
	}
	return a, nil
}

// checkDeployMode refuses deploy_mode: hot for a driver that cannot hot
// deploy, or that cannot retire what a hot deploy leaves running; the error
// begins with the key.
func checkDeployMode(scfg *ServiceConfig, desc sdk.Description) error {
	if scfg.DeployMode != ModeHot {
		return nil
	}
	if !desc.HotDeploy {
		return fmt.Errorf("deploy_mode: driver %s cannot hot deploy: use deploy_mode: restart, or a driver that can", desc.Name)
	}
	if !slices.ContainsFunc(desc.Steps, func(s sdk.StepInfo) bool { return s.Name == retireStep }) {
		return fmt.Errorf("deploy_mode: driver %s says it hot deploys but declares no %q step: use deploy_mode: restart, or fix the driver", desc.Name, retireStep)
	}
	return nil
}

// checkConfigKeys refuses instance keys the driver does not read, so a typo
// in agent.yaml is caught at start-up; the error begins with the key.
func checkConfigKeys(desc sdk.Description, spec sdk.Instance) error {
	for _, k := range sortedKeys(spec.Config) {
		if !slices.ContainsFunc(desc.Config, func(f sdk.ConfigField) bool { return f.Name == k }) {
			var known []string
			for _, f := range desc.Config {
				known = append(known, f.Name)
			}
			return fmt.Errorf("%s: unknown key for driver %s (known: port, %v)", k, desc.Name, known)
		}
	}
	for _, f := range desc.Config {
		if _, ok := spec.Config[f.Name]; f.Required && !ok {
			return fmt.Errorf("%s: missing (%s)", f.Name, f.Doc)
		}
	}
	return nil
}

// Close releases the agent's stores, kills its plugins and unlocks the
// data dir.
func (a *Agent) Close() error {
	a.drivers.Close()
	var err error
	if a.journal != nil {
		err = a.journal.Close()
	}
	if a.lock != nil {
		err = errors.Join(err, a.lock.Close())
		a.lock = nil
	}
	return err
}

func (a *Agent) driver(ctx context.Context, svc *service) (sdk.Driver, error) {
	d, err := a.drivers.Driver(ctx, svc.cfg.Driver)
	if err != nil {
		return nil, fmt.Errorf("driver %s: %w", svc.cfg.Driver, err)
	}
	return d, nil
}

// lookup finds an instance by its API names.
func (a *Agent) lookup(service, inst string) (*instance, error) {
	if !validName(service) || !validName(inst) {
		return nil, api.Errorf(api.CodeBadRequest, "bad name %q/%q: names are letters, digits, - and _", service, inst)
	}
	svc, ok := a.services[service]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "unknown service %q (this agent has %v)", service, sortedKeys(a.services))
	}
	i, ok := svc.instances[inst]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "unknown instance %q of service %s (it has %v)", inst, service, sortedKeys(svc.instances))
	}
	return i, nil
}

// tryLock takes the instance for one step, or returns who holds it.
func (i *instance) tryLock(l api.Lock) (holder *api.Lock, ok bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.holder != nil {
		h := *i.holder
		return &h, false
	}
	i.holder = &l
	return nil, true
}

func (i *instance) unlock() {
	i.mu.Lock()
	i.holder = nil
	i.mu.Unlock()
}

func (i *instance) lockHolder() *api.Lock {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.holder == nil {
		return nil
	}
	h := *i.holder
	return &h
}

func (i *instance) String() string { return i.spec.Service + "/" + i.spec.Name }

// Info describes the agent: its version, drivers and plugins.
func (a *Agent) Info() api.Agent {
	return api.Agent{Version: a.version, Drivers: a.drivers.Names(), Plugins: a.drivers.Plugins()}
}

// Services lists the services of the agent's config, their instances and
// the steps their drivers offer besides the core ones.
func (a *Agent) Services() []api.Service {
	out := []api.Service{}
	for _, name := range sortedKeys(a.services) {
		svc := a.services[name]
		out = append(out, api.Service{Name: name, Driver: svc.cfg.Driver, Context: svc.cfg.Context, Instances: sortedKeys(svc.instances), Steps: svc.steps(), Balancers: svc.balancers(), Mode: svc.cfg.DeployMode, HotDeploy: svc.desc.HotDeploy})
	}
	return out
}

// Commands lists the allow-listed commands of the agent's config, by name,
// with the arguments each takes.
func (a *Agent) Commands() []api.Command {
	out := []api.Command{}
	for _, name := range sortedKeys(a.cfg.commands) {
		out = append(out, a.cfg.commands[name].Command)
	}
	return out
}

// balancers names the kind of balancer of each instance that has one; nil
// when none has.
func (s *service) balancers() map[string]string {
	var out map[string]string
	for name, inst := range s.instances {
		if inst.lb != nil {
			if out == nil {
				out = map[string]string{}
			}
			out[name] = inst.lb.Kind()
		}
	}
	return out
}

// steps lists the steps the service's driver offers besides the core ones.
func (s *service) steps() []api.DriverStep {
	out := []api.DriverStep{}
	for _, st := range s.desc.Steps {
		out = append(out, api.DriverStep{Name: st.Name, Doc: st.Doc})
	}
	return out
}

// Status reports one instance as the status step does, without taking its
// lock or writing history.
func (a *Agent) Status(ctx context.Context, service, instance string) (api.StepResult, error) {
	inst, err := a.lookup(service, instance)
	if err != nil {
		return api.StepResult{}, err
	}
	return a.status(ctx, inst)
}

// ReleaseLease ends run's lease on service, so the next run need not wait
// for it to expire. Ending a lease the run does not hold is not an error:
// released says whether there was one.
func (a *Agent) ReleaseLease(service, run string) (released bool, err error) {
	svc, ok := a.services[service]
	if !ok {
		return false, api.Errorf(api.CodeNotFound, "unknown service %q (this agent has %v)", service, sortedKeys(a.services))
	}
	return svc.release(run), nil
}

// History lists the journal's entries and runs that q selects, newest
// first.
func (a *Agent) History(q api.HistoryQuery) (api.History, error) {
	f := history.Filter{Service: q.Service, Instance: q.Instance, Step: q.Step, Build: q.Build, Since: q.Since, Limit: q.Limit}
	entries, err := a.journal.List(f)
	if err != nil {
		return api.History{}, fmt.Errorf("read history: %w", err)
	}
	runs, err := a.journal.Runs(f)
	if err != nil {
		return api.History{}, fmt.Errorf("read history: %w", err)
	}
	out := api.History{Entries: make([]api.HistoryEntry, len(entries)), Runs: make([]api.Run, len(runs))}
	for i, e := range entries {
		out.Entries[i] = api.HistoryEntry{ID: e.ID, Time: e.Time, Service: e.Service, Instance: e.Instance, Step: e.Step, Release: e.Release,
			Result: e.Result, Message: e.Message, Duration: e.Duration, Build: api.Build(e.Build), User: e.User, Run: e.Run}
	}
	for i, r := range runs {
		out.Runs[i] = apiRun(r)
	}
	return out, nil
}

// EndRun records how run ended, as its client says. The agent keeps a
// record of a run only once it journaled one of its steps: the end of any
// other run is not_found.
func (a *Agent) EndRun(run string, end api.RunEnd) (api.Run, error) {
	if !validName(run) {
		return api.Run{}, api.Errorf(api.CodeBadRequest, "bad run id %q: ids are letters, digits, - and _", run)
	}
	if end.Outcome == "" || end.Outcome == api.OutcomeRunning {
		return api.Run{}, api.Errorf(api.CodeBadRequest, "end of run %s: outcome %q: say how the run ended (succeeded, failed-rolled-back, …)", run, end.Outcome)
	}
	code := end.ExitCode
	he := history.RunEnd{Started: end.Started, Duration: end.Duration, Template: end.Template, Outcome: end.Outcome,
		ExitCode: &code, Message: firstLine(end.Error), Counts: end.Counts}
	for _, art := range end.Artifacts {
		he.Artifacts = append(he.Artifacts, history.Artifact(art))
	}
	r, err := a.journal.EndRun(run, he)
	if errors.Is(err, history.ErrNoRun) {
		return api.Run{}, api.Errorf(api.CodeNotFound, "run %s ran no journaled step on this agent: it has no record of it", run)
	}
	if err != nil {
		return api.Run{}, fmt.Errorf("history: %w", err)
	}
	a.log.Info("run ended", "run", run, "template", end.Template, "outcome", end.Outcome, "exit_code", end.ExitCode, "build", r.Build.Tag)
	return apiRun(r), nil
}

// apiRun is a journal's run as the API gives it.
func apiRun(r history.Run) api.Run {
	out := api.Run{ID: r.ID, Started: r.Start(), Outcome: api.OutcomeRunning, Build: api.Build(r.Build), User: r.User, Instances: r.Instances, Steps: r.Steps}
	if e := r.End; e != nil {
		out.Ended, out.Duration, out.Template, out.Outcome, out.ExitCode, out.Error, out.Counts = e.Time, e.Duration, e.Template, e.Outcome, e.ExitCode, e.Message, e.Counts
		for _, art := range e.Artifacts {
			out.Artifacts = append(out.Artifacts, api.ArtifactRef(art))
		}
	}
	return out
}

// Metrics is what the agent exports at /metrics.
func (a *Agent) Metrics() prometheus.Gatherer { return a.metrics.reg }
