package testenv

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WriteCounter is a client that notes every write a reconcile sends to the
// API server (create, update, patch, apply, delete, status writes) and,
// as the reconciler's event recorder, every event: a reconcile of an
// unchanged object must note nothing.
type WriteCounter struct {
	client.Client
	mu     sync.Mutex
	writes []string
}

func (w *WriteCounter) note(verb string, obj client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("%s %T %s", verb, obj, obj.GetName()))
}

// Create notes the write and sends it.
func (w *WriteCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.note("create", obj)
	return w.Client.Create(ctx, obj, opts...)
}

// Update notes the write and sends it.
func (w *WriteCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	w.note("update", obj)
	return w.Client.Update(ctx, obj, opts...)
}

// Patch notes the write and sends it.
func (w *WriteCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	w.note("patch", obj)
	return w.Client.Patch(ctx, obj, patch, opts...)
}

// Apply notes the write and sends it.
func (w *WriteCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	w.mu.Lock()
	w.writes = append(w.writes, fmt.Sprintf("apply %T", obj))
	w.mu.Unlock()
	return w.Client.Apply(ctx, obj, opts...)
}

// Delete notes the write and sends it.
func (w *WriteCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	w.note("delete", obj)
	return w.Client.Delete(ctx, obj, opts...)
}

// Status is the status writer, counting too.
func (w *WriteCounter) Status() client.SubResourceWriter {
	return &statusCounter{SubResourceWriter: w.Client.Status(), w: w}
}

// Eventf makes the counter the reconciler's event recorder: an event is a
// write too.
func (w *WriteCounter) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...interface{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, fmt.Sprintf("event %s %s: %s", eventtype, reason, fmt.Sprintf(note, args...)))
}

type statusCounter struct {
	client.SubResourceWriter
	w *WriteCounter
}

func (s *statusCounter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.note("update-status", obj)
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *statusCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.note("patch-status", obj)
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// Take returns the writes noted since the last Take.
func (w *WriteCounter) Take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.writes
	w.writes = nil
	return out
}
