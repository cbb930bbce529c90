package sdk

import (
	"context"
	"sync"

	"google.golang.org/grpc"

	"github.com/baepo/baepo/sdk/proto"
)

// grpcServer is the plugin side of a driver plugin: it serves impl's
// methods as gRPC calls. The ctx each method of impl gets is the call's
// context, done when the agent cancels the call or the connection drops,
// and carries the call's deadline; for the streamed steps it also carries
// a progress func (see WithProgress) that sends each line to the agent.
type grpcServer struct {
	proto.UnimplementedDriverServer
	impl Driver
}

func (s *grpcServer) Describe(ctx context.Context, _ *proto.DescribeRequest) (*proto.DescribeResponse, error) {
	d, err := s.impl.Describe(ctx)
	if err != nil {
		return nil, toStatus(err)
	}
	return &proto.DescribeResponse{Description: descriptionToProto(d)}, nil
}

func (s *grpcServer) Validate(ctx context.Context, req *proto.ValidateRequest) (*proto.ValidateResponse, error) {
	if err := s.impl.Validate(ctx, instanceFromProto(req.GetInstance())); err != nil {
		return nil, toStatus(err)
	}
	return &proto.ValidateResponse{}, nil
}

func (s *grpcServer) Start(req *proto.StartRequest, stream grpc.ServerStreamingServer[proto.StepEvent]) error {
	return sendResult(stream, func(ctx context.Context) (Result, error) {
		return s.impl.Start(ctx, instanceFromProto(req.GetInstance()))
	})
}

func (s *grpcServer) Stop(req *proto.StopRequest, stream grpc.ServerStreamingServer[proto.StepEvent]) error {
	return sendResult(stream, func(ctx context.Context) (Result, error) {
		return s.impl.Stop(ctx, instanceFromProto(req.GetInstance()))
	})
}

func (s *grpcServer) Install(req *proto.InstallRequest, stream grpc.ServerStreamingServer[proto.StepEvent]) error {
	return sendResult(stream, func(ctx context.Context) (Result, error) {
		return s.impl.Install(ctx, instanceFromProto(req.GetInstance()), releaseFromProto(req.GetRelease()))
	})
}

func (s *grpcServer) Status(ctx context.Context, req *proto.StatusRequest) (*proto.StatusResponse, error) {
	st, err := s.impl.Status(ctx, instanceFromProto(req.GetInstance()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &proto.StatusResponse{Status: statusToProto(st)}, nil
}

func (s *grpcServer) Logs(ctx context.Context, req *proto.LogsRequest) (*proto.LogsResponse, error) {
	text, err := s.impl.Logs(ctx, instanceFromProto(req.GetInstance()), int(req.GetLines()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &proto.LogsResponse{Text: text}, nil
}

func (s *grpcServer) Step(req *proto.StepRequest, stream grpc.ServerStreamingServer[proto.StepEvent]) error {
	return sendResult(stream, func(ctx context.Context) (Result, error) {
		return s.impl.Step(ctx, instanceFromProto(req.GetInstance()), req.GetName(), nilIfEmpty(req.GetArgs()))
	})
}

// sendResult runs a streamed step: it sends each line the step reports with
// Progress as a progress event, then the step's result, or returns its
// error as the call's status.
func sendResult(stream grpc.ServerStreamingServer[proto.StepEvent], step func(context.Context) (Result, error)) error {
	// A driver may report progress from several goroutines, and even after
	// its step returned; a stream may be sent on by one goroutine at a time,
	// and only until the handler returns.
	var (
		mu   sync.Mutex
		done bool
	)
	send := func(ev *proto.StepEvent) error {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return nil
		}
		return stream.Send(ev)
	}
	defer func() {
		mu.Lock()
		done = true
		mu.Unlock()
	}()

	ctx := WithProgress(stream.Context(), func(msg string) {
		// A failed send means the call is over: its ctx says so to the
		// driver, so the error needs no other handling.
		_ = send(&proto.StepEvent{Event: &proto.StepEvent_Progress{Progress: &proto.Progress{Msg: msg}}})
	})
	res, err := step(ctx)
	if err != nil {
		return toStatus(err)
	}
	return send(&proto.StepEvent{Event: &proto.StepEvent_Result{Result: resultToProto(res)}})
}
