package client

import (
	"context"
	"slices"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/step"
)

// Check implements engine.Checker for a dry run: it reads what the agent
// of inst allows (GET /v1/services, which changes nothing) and refuses, in
// the agent's words, a run step whose command is not allow-listed or not
// given the arguments it takes, and a step that is neither a core step nor
// one of the driver's own, and a drain or undrain of an instance the agent
// lists without a balancer, and an install or rollback with mode hot on a
// service whose driver cannot hot deploy. The other core steps need no
// check. An agent too old to say what it allows passes every step.
func (a *Agents) Check(ctx context.Context, inst engine.Instance, st engine.Step) error {
	switch {
	case st.Name == step.Drain || st.Name == step.Undrain:
		// inst.Balancer is what the agent said when it listed inst.
		if inst.Balancer == "" {
			c, err := a.conn(inst.Server)
			if err != nil {
				return err
			}
			return c.fail(ctx, api.NoBalancer(st.Name, inst.Service+"/"+inst.Name))
		}
		return nil
	case (st.Name == step.Install || st.Name == step.Rollback) && st.Args["mode"] == "hot":
	case st.Name != step.Run && step.IsCore(st.Name):
		return nil
	}
	c, err := a.conn(inst.Server)
	if err != nil {
		return err
	}
	svcs, err := c.api.Services(ctx)
	if err != nil {
		return c.fail(ctx, err)
	}
	i := slices.IndexFunc(svcs.Services, func(s api.Service) bool { return s.Name == inst.Service })
	if i < 0 {
		return c.fail(ctx, api.Errorf(api.CodeNotFound, "unknown service %q on this agent", inst.Service))
	}
	svc := svcs.Services[i]
	var refusal error
	switch {
	case st.Name == step.Run && svcs.Commands != nil:
		name, _ := st.Args["command"].(string)
		cmd, err := api.FindCommand(svcs.Commands, name)
		if err == nil {
			err = cmd.CheckArgs(st.Args)
		}
		refusal = err
	case st.Name == step.Install || st.Name == step.Rollback:
		// An agent that says the service's mode says whether it hot deploys.
		if svc.Mode != "" && !svc.HotDeploy {
			refusal = api.NoHotDeploy(st.Name, inst.Service+"/"+inst.Name, svc.Driver)
		}
	case st.Name != step.Run && svc.Steps != nil && !slices.ContainsFunc(svc.Steps, func(s api.DriverStep) bool { return s.Name == st.Name }):
		refusal = api.UnknownStep(st.Name, inst.Service+"/"+inst.Name, step.Core(), svc.Driver, svc.Steps)
	}
	return c.fail(ctx, refusal)
}

var _ engine.Checker = (*Agents)(nil)
