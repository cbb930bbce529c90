package sdk

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"

	"github.com/baepo/baepo/sdk/proto"
)

// grpcClient is the host side of a driver plugin: a Driver whose methods
// are gRPC calls to the plugin process. Each call's ctx is the RPC's
// context, so cancelling it (or its deadline) reaches the driver's ctx in
// the plugin; other values of ctx do not cross, except that the progress
// lines the plugin streams are passed to Progress(ctx, msg) in order.
type grpcClient struct {
	client proto.DriverClient
}

func (c *grpcClient) Describe(ctx context.Context) (Description, error) {
	resp, err := c.client.Describe(ctx, &proto.DescribeRequest{})
	if err != nil {
		return Description{}, fromStatus(ctx, "describe", err)
	}
	return descriptionFromProto(resp.GetDescription()), nil
}

func (c *grpcClient) Validate(ctx context.Context, inst Instance) error {
	_, err := c.client.Validate(ctx, &proto.ValidateRequest{Instance: instanceToProto(inst)})
	return fromStatus(ctx, "validate", err)
}

func (c *grpcClient) Start(ctx context.Context, inst Instance) (Result, error) {
	stream, err := c.client.Start(ctx, &proto.StartRequest{Instance: instanceToProto(inst)})
	return recvResult(ctx, "start", stream, err)
}

func (c *grpcClient) Stop(ctx context.Context, inst Instance) (Result, error) {
	stream, err := c.client.Stop(ctx, &proto.StopRequest{Instance: instanceToProto(inst)})
	return recvResult(ctx, "stop", stream, err)
}

func (c *grpcClient) Install(ctx context.Context, inst Instance, rel Release) (Result, error) {
	stream, err := c.client.Install(ctx, &proto.InstallRequest{
		Instance: instanceToProto(inst),
		Release:  releaseToProto(rel),
	})
	return recvResult(ctx, "install", stream, err)
}

func (c *grpcClient) Status(ctx context.Context, inst Instance) (Status, error) {
	resp, err := c.client.Status(ctx, &proto.StatusRequest{Instance: instanceToProto(inst)})
	if err != nil {
		return Status{}, fromStatus(ctx, "status", err)
	}
	return statusFromProto(resp.GetStatus()), nil
}

func (c *grpcClient) Logs(ctx context.Context, inst Instance, lines int) (string, error) {
	resp, err := c.client.Logs(ctx, &proto.LogsRequest{Instance: instanceToProto(inst), Lines: int64(lines)})
	if err != nil {
		return "", fromStatus(ctx, "logs", err)
	}
	return resp.GetText(), nil
}

func (c *grpcClient) Step(ctx context.Context, inst Instance, name string, args map[string]string) (Result, error) {
	stream, err := c.client.Step(ctx, &proto.StepRequest{
		Instance: instanceToProto(inst),
		Name:     name,
		Args:     args,
	})
	return recvResult(ctx, "step "+name, stream, err)
}

// recvResult reads a streamed step to its end: it passes each progress
// line to Progress(ctx, msg) as it arrives and returns the one result, or
// the driver's error.
func recvResult(ctx context.Context, method string, stream grpc.ServerStreamingClient[proto.StepEvent], err error) (Result, error) {
	if err != nil {
		return Result{}, fromStatus(ctx, method, err)
	}
	var res *proto.Result
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, fromStatus(ctx, method, err)
		}
		switch e := ev.GetEvent().(type) {
		case *proto.StepEvent_Progress:
			if res != nil {
				return Result{}, fmt.Errorf("driver plugin: %s: progress after the result", method)
			}
			Progress(ctx, e.Progress.GetMsg())
		case *proto.StepEvent_Result:
			if res != nil {
				return Result{}, fmt.Errorf("driver plugin: %s: two results", method)
			}
			res = e.Result
		default:
			return Result{}, fmt.Errorf("driver plugin: %s: unknown event %T", method, e)
		}
	}
	if res == nil {
		return Result{}, fmt.Errorf("driver plugin: %s: stream ended without a result", method)
	}
	return resultFromProto(res), nil
}

var _ Driver = (*grpcClient)(nil)
