package sdk

import "github.com/baepo/baepo/sdk/proto"

// This file converts between sdk's types and their protobuf messages. Empty
// maps travel as nil: a map that is empty on one side is nil on the other.

func instanceToProto(i Instance) *proto.Instance {
	return &proto.Instance{
		Service:  i.Service,
		Name:     i.Name,
		Port:     int64(i.Port),
		Context:  i.Context,
		Config:   i.Config,
		StateDir: i.StateDir,
		Mode:     i.Mode,
	}
}

func instanceFromProto(p *proto.Instance) Instance {
	return Instance{
		Service:  p.GetService(),
		Name:     p.GetName(),
		Port:     int(p.GetPort()),
		Context:  p.GetContext(),
		Config:   nilIfEmpty(p.GetConfig()),
		StateDir: p.GetStateDir(),
		Mode:     p.GetMode(),
	}
}

func releaseToProto(r Release) *proto.Release {
	return &proto.Release{Id: r.ID, Artifact: r.Artifact, Name: r.Name, Sha256: r.SHA256, Hot: r.Hot}
}

func releaseFromProto(p *proto.Release) Release {
	return Release{ID: p.GetId(), Artifact: p.GetArtifact(), Name: p.GetName(), SHA256: p.GetSha256(), Hot: p.GetHot()}
}

func resultToProto(r Result) *proto.Result {
	return &proto.Result{Message: r.Message, Output: r.Output}
}

func resultFromProto(p *proto.Result) Result {
	return Result{Message: p.GetMessage(), Output: nilIfEmpty(p.GetOutput())}
}

func statusToProto(s Status) *proto.Status {
	return &proto.Status{Running: s.Running, Pid: int64(s.PID), Message: s.Message}
}

func statusFromProto(p *proto.Status) Status {
	return Status{Running: p.GetRunning(), PID: int(p.GetPid()), Message: p.GetMessage()}
}

func descriptionToProto(d Description) *proto.Description {
	p := &proto.Description{Name: d.Name, Version: d.Version, HotDeploy: d.HotDeploy}
	for _, f := range d.Config {
		p.Config = append(p.Config, &proto.ConfigField{Name: f.Name, Doc: f.Doc, Required: f.Required})
	}
	for _, s := range d.Steps {
		p.Steps = append(p.Steps, &proto.StepInfo{Name: s.Name, Doc: s.Doc})
	}
	return p
}

func descriptionFromProto(p *proto.Description) Description {
	d := Description{Name: p.GetName(), Version: p.GetVersion(), HotDeploy: p.GetHotDeploy()}
	for _, f := range p.GetConfig() {
		d.Config = append(d.Config, ConfigField{Name: f.GetName(), Doc: f.GetDoc(), Required: f.GetRequired()})
	}
	for _, s := range p.GetSteps() {
		d.Steps = append(d.Steps, StepInfo{Name: s.GetName(), Doc: s.GetDoc()})
	}
	return d
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
