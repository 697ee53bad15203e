#ifndef LEARNSTORE_PREFETCH_H
#define LEARNSTORE_PREFETCH_H

/* A hint that `address` will be read soon: the load starts now and overlaps with other work.
   Swift has no prefetch intrinsic; this is the one thing this module exists for. */
static inline void learnstore_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

#endif
