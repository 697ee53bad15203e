#ifndef LEARNSTORE_CZSTD_SHIM_H
#define LEARNSTORE_CZSTD_SHIM_H
#include <zstd.h>
#include <zstd_errors.h>
#endif
