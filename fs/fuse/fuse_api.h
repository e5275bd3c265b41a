// The libfuse API version this daemon is written against (low-level API,
// libfuse 3.14), in one place so every file sees the same declarations.
// It must be at least 3.12: below that, fuse_session_loop_mt() takes the old
// config struct, and a config from fuse_loop_cfg_create() is misread (as
// clone_fd on, one short-lived thread per request).
// Declarations only: no state, nothing to call.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
