/* The share spool's group commit, off the interpreter: the event loop copies frames into a pending buffer;
 * a writer thread, running sp_gc_run() without the GIL, waits out the commit window, writes the batch to the
 * active segment's file descriptor, fdatasyncs it and rings an eventfd the event loop listens on. Nothing on
 * the writer thread's steady path touches a Python object, so it never waits for the interpreter nor makes
 * the event loop wait for it. Rotation and failures go back to Python (sp_gc_run returns), which are rare. */
#ifndef SP_GROUPCOMMIT_H
#define SP_GROUPCOMMIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sp_gc sp_gc;

enum {
    SP_GC_STOPPED = 0, /* sp_gc_stop() was called and nothing is pending */
    SP_GC_ROTATE = 1,  /* the pending batch needs a new segment first: sp_gc_set_segment, or sp_gc_fail_pending */
    SP_GC_FAILED = 2,  /* the batch's write or fdatasync failed (cut off the file): sp_gc_finish_failed */
};

typedef struct {
    int64_t done_gen;      /* the last batch finished, written or failed (batches finish in order) */
    int64_t durable_seq;   /* every record up to here that did not fail is on disk */
    int64_t commits;       /* batches written and fdatasynced */
    int64_t records;       /* records in them */
    int64_t seg_bytes;     /* bytes of the active segment on disk (the next batch goes after them) */
    int64_t pending;       /* records waiting for a window */
    int64_t inflight;      /* records being written */
    int64_t batch_first;   /* the batch sp_gc_run returned with (ROTATE: the pending one; FAILED: the failed one) */
    int64_t batch_last;
    int64_t batch_gen;
    int64_t batch_count;
    int batch_errno;
} sp_gc_state;

/* window: seconds from a batch's first record to its write (0: at once); segment_limit: bytes a segment may
 * grow to (a batch that would cross it starts a new one, unless the segment is empty); efd: an eventfd. */
sp_gc *sp_gc_new(double window, int64_t segment_limit, int efd);
void sp_gc_free(sp_gc *gc);

/* Event loop: queue one frame with its seq; *gen is the batch it joins. -1 (ENOMEM) leaves nothing queued. */
int sp_gc_append(sp_gc *gc, const uint8_t *frame, size_t len, int64_t seq, int64_t *gen);
void sp_gc_flush(sp_gc *gc);             /* write what is pending now, without waiting out its window */
void sp_gc_stop(sp_gc *gc);              /* sp_gc_run returns SP_GC_STOPPED once nothing is pending */
void sp_gc_get_state(sp_gc *gc, sp_gc_state *out);

/* Writer thread, without the GIL. */
int sp_gc_run(sp_gc *gc);

/* Writer thread, after SP_GC_ROTATE or at start: append to fd from now on, which holds bytes already. */
void sp_gc_set_segment(sp_gc *gc, int fd, int64_t bytes);
/* After SP_GC_ROTATE when no new segment could be made: fail the pending batch (as SP_GC_FAILED would). */
void sp_gc_fail_pending(sp_gc *gc, int err);
/* After SP_GC_FAILED (or sp_gc_fail_pending), once Python has noted the failure: finish it, ring the loop. */
void sp_gc_finish_failed(sp_gc *gc);

/* Tests: the next `times` batches fail with err (after writing `partial` bytes; on fdatasync if on_fsync), or,
 * with err 0, sleep `delay` seconds after their fdatasync. */
void sp_gc_fault(sp_gc *gc, int err, int64_t partial, int on_fsync, int times, double delay);

#endif
