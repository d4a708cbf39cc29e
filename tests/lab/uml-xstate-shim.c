/*
 * uml-xstate-shim.c -- LD_PRELOAD shim that lets Debian's User-Mode Linux 6.1
 * (/usr/bin/linux.uml) boot on hosts with a large XSAVE area (AVX-512, AMX).
 *
 * Why it exists
 * -------------
 * UML runs guest processes as ptrace()d host processes. Around every guest
 * system call it saves and restores the extended FPU state of the guest
 * thread with PTRACE_GETREGSET / PTRACE_SETREGSET(NT_X86_XSTATE), using a
 * buffer whose size was fixed when UML 6.1 was compiled. The host kernel
 * happily truncates a GETREGSET into a small buffer, but it refuses a
 * SETREGSET whose size is not exactly the host's full XSAVE size: the call
 * fails with EFAULT. On a CPU with AVX-512 and AMX that full size is ~11 KiB,
 * far more than UML's buffer, so the first SETREGSET fails and UML panics:
 *
 *     userspace - ptrace set fp regs failed, errno = 14
 *
 * What it does
 * ------------
 * It wraps ptrace(). For a GETREGSET/SETREGSET of NT_X86_XSTATE whose iovec
 * is smaller than the host's XSAVE size (probed once with a 64 KiB
 * GETREGSET; the kernel shrinks iov_len to the real size) it
 *   - GET: reads the full state into a side buffer, copies the first iov_len
 *     bytes (what UML asked for) into UML's buffer;
 *   - SET: lays UML's iov_len bytes over the full state saved for that UML
 *     buffer and writes the full state back.
 * Side buffers are keyed by iov_base. UML keeps one FPU buffer per guest
 * thread (in its thread_struct), so each guest thread keeps its own upper
 * AVX-512/AMX state across context switches. The table is bounded
 * (MAX_SAVED entries, least recently used one is recycled). A SET for a
 * buffer without a saved state (new thread, recycled entry) starts from the
 * state the host process has right now, and a buffer address that UML
 * reuses for a new thread starts with the old thread's upper registers; the
 * upper registers are caller-saved in the x86-64 ABI (and a new thread starts
 * in a function call), so nothing in the guest relies on their contents at
 * those points.
 * Calls whose iovec already has the full size, other requests and other
 * regsets go to the real ptrace() unchanged, so the shim is harmless on
 * hosts where UML's buffer is big enough.
 *
 * Not thread-safe, on purpose: only UML's main kernel thread issues these
 * ptrace() calls (its helper threads never trace anything). Memory comes
 * from mmap(), not malloc(), so nothing here depends on UML's allocator.
 *
 * Built on demand by tests/lab/sctp-lab (gcc -shared -fPIC) and preloaded into
 * the linux.uml process only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

#define PROBE_SIZE (64 * 1024) /* larger than any XSAVE area to date */
#define MAX_SAVED 512          /* guest threads with a saved full state */

typedef long (*ptrace_fn)(enum __ptrace_request, ...);

static ptrace_fn real_ptrace;
static size_t full_size;   /* host XSAVE size, 0 = unknown */
static int probe_state;    /* 0 = not yet, 1 = done, -1 = gave up: pass through */
static int probe_failures;
static int announced;

struct saved {
  const void *key;         /* UML's buffer (iov_base), NULL = free slot */
  unsigned long last_use;  /* for least-recently-used recycling */
  unsigned char *state;    /* full_size bytes inside the arena */
};
static struct saved table[MAX_SAVED];
static unsigned char *arena; /* MAX_SAVED * full_size bytes */
static unsigned char *scratch; /* full_size bytes for the probe / fallback */
static unsigned long use_clock;
static struct saved *last_hit;

static void *map_bytes(size_t n) {
  void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Learn the host's XSAVE size from a traced, stopped pid; set up storage. */
static int probe(pid_t pid) {
  if (probe_state)
    return probe_state > 0;
  unsigned char *buf = map_bytes(PROBE_SIZE);
  if (!buf)
    return 0; /* try again on a later call */
  struct iovec iov = {buf, PROBE_SIZE};
  int saved_errno = errno;
  long rc = real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov);
  munmap(buf, PROBE_SIZE);
  errno = saved_errno;
  if (rc != 0 || iov.iov_len == 0 || iov.iov_len >= PROBE_SIZE) {
    /* e.g. the pid was not stopped: retry on the next calls, then give up */
    if (++probe_failures >= 3)
      probe_state = -1;
    return 0;
  }
  full_size = iov.iov_len;
  arena = map_bytes((size_t)MAX_SAVED * full_size);
  scratch = map_bytes(full_size);
  if (!arena || !scratch) {
    probe_state = -1;
    return 0;
  }
  for (size_t i = 0; i < MAX_SAVED; i++)
    table[i].state = arena + i * full_size;
  probe_state = 1;
  return 1;
}

/* The saved entry for key, or NULL. */
static struct saved *lookup(const void *key) {
  if (last_hit && last_hit->key == key)
    return last_hit;
  for (size_t i = 0; i < MAX_SAVED; i++)
    if (table[i].key == key)
      return last_hit = &table[i];
  return NULL;
}

/* A slot for key: a free one, else the least recently used one. */
static struct saved *claim(const void *key) {
  struct saved *victim = &table[0];
  for (size_t i = 0; i < MAX_SAVED; i++) {
    if (!table[i].key) {
      victim = &table[i];
      break;
    }
    if (table[i].last_use < victim->last_use)
      victim = &table[i];
  }
  victim->key = key;
  return last_hit = victim;
}

static void announce(size_t uml_size) {
  if (announced)
    return;
  announced = 1;
  /* goes to UML's stderr, i.e. the lab's console log */
  fprintf(stderr, "uml-xstate-shim: host XSAVE area %zu bytes, UML buffer %zu: widening xstate ptrace calls\n",
          full_size, uml_size);
}

static long xstate_get(pid_t pid, struct iovec *iov) {
  struct saved *s = lookup(iov->iov_base);
  if (!s)
    s = claim(iov->iov_base);
  struct iovec full = {s->state, full_size};
  long rc = real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &full);
  if (rc != 0) {
    s->key = NULL; /* nothing valid saved */
    last_hit = NULL;
    return rc;
  }
  size_t n = iov->iov_len < full.iov_len ? iov->iov_len : full.iov_len;
  memcpy(iov->iov_base, s->state, n);
  iov->iov_len = n;
  s->last_use = ++use_clock;
  return 0;
}

static long xstate_set(pid_t pid, struct iovec *iov) {
  struct saved *s = lookup(iov->iov_base);
  if (!s) {
    /* No saved full state for this buffer: start from the live one. */
    struct iovec cur = {scratch, full_size};
    long rc = real_ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &cur);
    if (rc != 0)
      return rc;
    s = claim(iov->iov_base);
    memcpy(s->state, scratch, full_size);
  }
  memcpy(s->state, iov->iov_base, iov->iov_len);
  s->last_use = ++use_clock;
  struct iovec full = {s->state, full_size};
  return real_ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &full);
}

long ptrace(enum __ptrace_request request, ...) {
  va_list ap;
  va_start(ap, request);
  pid_t pid = va_arg(ap, pid_t);
  void *addr = va_arg(ap, void *);
  void *data = va_arg(ap, void *);
  va_end(ap);

  if (!real_ptrace) {
    real_ptrace = (ptrace_fn)(uintptr_t)dlsym(RTLD_NEXT, "ptrace");
    if (!real_ptrace) {
      errno = ENOSYS;
      return -1;
    }
  }
  if ((request == PTRACE_GETREGSET || request == PTRACE_SETREGSET) &&
      (uintptr_t)addr == NT_X86_XSTATE && data) {
    struct iovec *iov = data;
    if (iov->iov_base && probe(pid) && iov->iov_len < full_size) {
      announce(iov->iov_len);
      return request == PTRACE_GETREGSET ? xstate_get(pid, iov) : xstate_set(pid, iov);
    }
  }
  return real_ptrace(request, pid, addr, data);
}
