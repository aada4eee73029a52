# The share spool's group commit in C (native/groupcommit.c): the event loop queues frames, a writer thread
# writes and fdatasyncs each batch without the GIL and rings an eventfd. stratum_pool/store/spool/writer.py
# drives it; docs/architecture.md explains why it is not Python.

from libc.stdint cimport int64_t


cdef extern from "groupcommit.h":
    ctypedef struct sp_gc:
        pass
    ctypedef struct sp_gc_state:
        int64_t done_gen
        int64_t durable_seq
        int64_t commits
        int64_t records
        int64_t seg_bytes
        int64_t pending
        int64_t inflight
        int64_t batch_first
        int64_t batch_last
        int64_t batch_gen
        int64_t batch_count
        int batch_errno
    enum:
        SP_GC_STOPPED
        SP_GC_ROTATE
        SP_GC_FAILED
    sp_gc *sp_gc_new(double window, int64_t segment_limit, int efd)
    void sp_gc_free(sp_gc *gc)
    int sp_gc_append(sp_gc *gc, const uint8_t *frame, size_t len, int64_t seq, int64_t *gen)
    void sp_gc_flush(sp_gc *gc)
    void sp_gc_stop(sp_gc *gc)
    void sp_gc_get_state(sp_gc *gc, sp_gc_state *out)
    int sp_gc_run(sp_gc *gc) nogil
    void sp_gc_set_segment(sp_gc *gc, int fd, int64_t nbytes)
    void sp_gc_fail_pending(sp_gc *gc, int err)
    void sp_gc_finish_failed(sp_gc *gc)
    void sp_gc_fault(sp_gc *gc, int err, int64_t partial, int on_fsync, int times, double delay)


GC_STOPPED = SP_GC_STOPPED
GC_ROTATE = SP_GC_ROTATE
GC_FAILED = SP_GC_FAILED


cdef class GroupCommit:
    """Frames queued by the event loop, written and fdatasynced in batches by a thread that calls :meth:`run`
    (without the GIL: it returns only to stop, to rotate, or on a failure). ``efd`` is an eventfd rung after
    every batch that finished."""

    cdef sp_gc *gc

    def __cinit__(self, double window, int64_t segment_limit, int efd):
        self.gc = sp_gc_new(window, segment_limit, efd)
        if self.gc == NULL:
            raise MemoryError()

    def __dealloc__(self):
        sp_gc_free(self.gc)

    def append(self, bytes frame, int64_t seq):
        """Queue ``frame`` (record ``seq``); returns the batch (generation) it joined."""
        cdef int64_t gen = 0
        if sp_gc_append(self.gc, <const uint8_t *>PyBytes_AS_STRING(frame), <size_t>PyBytes_GET_SIZE(frame),
                        seq, &gen) != 0:
            raise MemoryError()
        return gen

    def flush(self):
        sp_gc_flush(self.gc)

    def stop(self):
        sp_gc_stop(self.gc)

    def state(self):
        """(done_gen, durable_seq, commits, records, seg_bytes, pending, inflight, batch_first, batch_last,
        batch_gen, batch_count, batch_errno)."""
        cdef sp_gc_state s
        sp_gc_get_state(self.gc, &s)
        return (s.done_gen, s.durable_seq, s.commits, s.records, s.seg_bytes, s.pending, s.inflight,
                s.batch_first, s.batch_last, s.batch_gen, s.batch_count, s.batch_errno)

    def done_gen(self):
        cdef sp_gc_state s
        sp_gc_get_state(self.gc, &s)
        return s.done_gen

    def run(self):
        cdef int code
        with nogil:
            code = sp_gc_run(self.gc)
        return code

    def set_segment(self, int fd, int64_t nbytes):
        sp_gc_set_segment(self.gc, fd, nbytes)

    def fail_pending(self, int err):
        sp_gc_fail_pending(self.gc, err)

    def finish_failed(self):
        sp_gc_finish_failed(self.gc)

    def fault(self, int err, int64_t partial=0, bint on_fsync=False, int times=1, double delay=0.0):
        """Tests: the next ``times`` batches fail with ``err`` (after ``partial`` bytes, or on fdatasync), or
        with ``err`` 0 sleep ``delay`` seconds after their fdatasync."""
        sp_gc_fault(self.gc, err, partial, on_fsync, times, delay)
