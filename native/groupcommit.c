/* See groupcommit.h. */
#define _GNU_SOURCE
#include "groupcommit.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct sp_gc {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* the pending batch: frames the loop appended since the last swap */
    uint8_t *buf;
    size_t len, cap;
    int64_t first_seq, last_seq, count, gen;
    double opened_at;  /* CLOCK_MONOTONIC seconds of its first frame */
    /* the batch being written (the writer thread's alone outside the mutex) */
    uint8_t *spare;
    size_t spare_cap;
    sp_gc_state st;
    double window;
    int64_t segment_limit;
    int fd, efd;
    int stopping, flush_now, need_rotate;
    /* test faults */
    int fault_errno, fault_on_fsync, fault_times;
    int64_t fault_partial;
    double fault_delay;
};

static double now_monotonic(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct timespec abs_monotonic(double t) {
    struct timespec ts;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec += 1;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

sp_gc *sp_gc_new(double window, int64_t segment_limit, int efd) {
    sp_gc *gc = calloc(1, sizeof(*gc));
    if (gc == NULL) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&gc->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&gc->mu, NULL);
    gc->window = window;
    gc->segment_limit = segment_limit;
    gc->efd = efd;
    gc->fd = -1;
    gc->gen = 1;
    return gc;
}

void sp_gc_free(sp_gc *gc) {
    if (gc == NULL) return;
    pthread_cond_destroy(&gc->cv);
    pthread_mutex_destroy(&gc->mu);
    free(gc->buf);
    free(gc->spare);
    free(gc);
}

int sp_gc_append(sp_gc *gc, const uint8_t *frame, size_t len, int64_t seq, int64_t *gen) {
    int wake = 0;
    pthread_mutex_lock(&gc->mu);
    if (gc->len + len > gc->cap) {
        size_t cap = gc->cap ? gc->cap : 65536;
        while (cap < gc->len + len) cap *= 2;
        uint8_t *grown = realloc(gc->buf, cap);
        if (grown == NULL) {
            pthread_mutex_unlock(&gc->mu);
            return -1;
        }
        gc->buf = grown;
        gc->cap = cap;
    }
    memcpy(gc->buf + gc->len, frame, len);
    if (gc->count == 0) {
        gc->first_seq = seq;
        gc->opened_at = now_monotonic();
        wake = 1;
    }
    gc->len += len;
    gc->last_seq = seq;
    gc->count += 1;
    gc->st.pending = gc->count;
    *gen = gc->gen;
    pthread_mutex_unlock(&gc->mu);
    if (wake) pthread_cond_signal(&gc->cv);  /* the writer may be waiting for a first record */
    return 0;
}

void sp_gc_flush(sp_gc *gc) {
    pthread_mutex_lock(&gc->mu);
    gc->flush_now = 1;
    pthread_cond_signal(&gc->cv);
    pthread_mutex_unlock(&gc->mu);
}

void sp_gc_stop(sp_gc *gc) {
    pthread_mutex_lock(&gc->mu);
    gc->stopping = 1;
    pthread_cond_signal(&gc->cv);
    pthread_mutex_unlock(&gc->mu);
}

void sp_gc_get_state(sp_gc *gc, sp_gc_state *out) {
    pthread_mutex_lock(&gc->mu);
    *out = gc->st;
    pthread_mutex_unlock(&gc->mu);
}

static void ring(sp_gc *gc) {
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(gc->efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

/* Under the mutex: the pending batch becomes the one in flight (its buffer swapped with the spare). */
static size_t take_batch(sp_gc *gc) {
    uint8_t *b = gc->buf;
    size_t cap = gc->cap, len = gc->len;
    gc->buf = gc->spare;
    gc->cap = gc->spare_cap;
    gc->spare = b;
    gc->spare_cap = cap;
    gc->st.batch_first = gc->first_seq;
    gc->st.batch_last = gc->last_seq;
    gc->st.batch_gen = gc->gen;
    gc->st.batch_count = gc->count;
    gc->st.inflight = gc->count;
    gc->st.pending = 0;
    gc->st.batch_errno = 0;
    gc->len = 0;
    gc->count = 0;
    gc->gen += 1;
    gc->flush_now = 0;
    return len;
}

typedef struct {
    int err, on_fsync;
    int64_t partial;
    double delay;
} fault_t;

/* Under the mutex: the fault (if any) this batch is to meet. */
static fault_t next_fault(sp_gc *gc) {
    fault_t f = {0, 0, 0, 0.0};
    if (gc->fault_times > 0) {
        gc->fault_times -= 1;
        f.err = gc->fault_errno;
        f.on_fsync = gc->fault_on_fsync;
        f.partial = gc->fault_partial;
        f.delay = gc->fault_delay;
    }
    return f;
}

/* The batch at `at` (the segment is preallocated: its size does not change, so fdatasync writes the data only). */
static int write_all(int fd, const uint8_t *data, size_t len, int64_t at, fault_t fault, int64_t *written) {
    size_t done = 0;
    if (fault.err != 0 && !fault.on_fsync) {
        size_t partial = (size_t)fault.partial < len ? (size_t)fault.partial : len;
        if (partial > 0 && pwrite(fd, data, partial, (off_t)at) > 0) *written = (int64_t)partial;
        return fault.err;
    }
    while (done < len) {
        ssize_t n = pwrite(fd, data + done, len - done, (off_t)(at + (int64_t)done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        done += (size_t)n;
        *written = (int64_t)done;
    }
    if (fault.err != 0) return fault.err;  /* on fdatasync */
    while (fdatasync(fd) != 0) {
        if (errno != EINTR) return errno;
    }
    if (fault.delay > 0) {
        struct timespec ts = {(time_t)fault.delay, (long)((fault.delay - (double)(time_t)fault.delay) * 1e9)};
        nanosleep(&ts, NULL);
    }
    return 0;
}

int sp_gc_run(sp_gc *gc) {
    for (;;) {
        pthread_mutex_lock(&gc->mu);
        while (gc->count == 0 && !gc->stopping) pthread_cond_wait(&gc->cv, &gc->mu);
        if (gc->count == 0) {
            pthread_mutex_unlock(&gc->mu);
            return SP_GC_STOPPED;
        }
        /* wait out the batch's window (a flush or a stop cuts it short) */
        while (!gc->flush_now && !gc->stopping) {
            double deadline = gc->opened_at + gc->window;
            if (now_monotonic() >= deadline) break;
            struct timespec ts = abs_monotonic(deadline);
            pthread_cond_timedwait(&gc->cv, &gc->mu, &ts);
        }
        if (gc->need_rotate || (gc->st.seg_bytes > 0 && gc->st.seg_bytes + (int64_t)gc->len > gc->segment_limit)) {
            gc->st.batch_first = gc->first_seq;
            pthread_mutex_unlock(&gc->mu);
            return SP_GC_ROTATE;
        }
        size_t len = take_batch(gc);
        int64_t start = gc->st.seg_bytes;
        fault_t fault = next_fault(gc);
        int fd = gc->fd;
        pthread_mutex_unlock(&gc->mu);

        int64_t written = 0;
        int err = write_all(fd, gc->spare, len, start, fault, &written);
        if (err != 0 && written > 0) {
            /* cut the partial write off (the rest of the segment is unused: need_rotate); if that fails too, the
             * bytes stay after the last record of a segment nothing is written to any more, where readers stop */
            while (ftruncate(fd, (off_t)start) != 0 && errno == EINTR) {}
        }
        pthread_mutex_lock(&gc->mu);
        gc->st.inflight = 0;
        if (err != 0) {
            gc->need_rotate = 1;
            gc->st.batch_errno = err;
            pthread_mutex_unlock(&gc->mu);
            return SP_GC_FAILED;
        }
        gc->st.seg_bytes = start + (int64_t)len;
        gc->st.durable_seq = gc->st.batch_last;
        gc->st.commits += 1;
        gc->st.records += gc->st.batch_count;
        gc->st.done_gen = gc->st.batch_gen;
        pthread_mutex_unlock(&gc->mu);
        ring(gc);
    }
}

void sp_gc_set_segment(sp_gc *gc, int fd, int64_t bytes) {
    pthread_mutex_lock(&gc->mu);
    gc->fd = fd;
    gc->st.seg_bytes = bytes;
    gc->need_rotate = 0;
    pthread_mutex_unlock(&gc->mu);
}

void sp_gc_fail_pending(sp_gc *gc, int err) {
    pthread_mutex_lock(&gc->mu);
    if (gc->count > 0) {
        take_batch(gc);
        gc->st.inflight = 0;
    }
    gc->st.batch_errno = err;
    gc->need_rotate = 1;
    pthread_mutex_unlock(&gc->mu);
}

void sp_gc_finish_failed(sp_gc *gc) {
    pthread_mutex_lock(&gc->mu);
    gc->st.done_gen = gc->st.batch_gen;
    pthread_mutex_unlock(&gc->mu);
    ring(gc);
}

void sp_gc_fault(sp_gc *gc, int err, int64_t partial, int on_fsync, int times, double delay) {
    pthread_mutex_lock(&gc->mu);
    gc->fault_errno = err;
    gc->fault_partial = partial;
    gc->fault_on_fsync = on_fsync;
    gc->fault_times = times;
    gc->fault_delay = delay;
    pthread_mutex_unlock(&gc->mu);
}
