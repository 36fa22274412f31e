#ifndef TIDE_CLIBGIT2_SHIM_H
#define TIDE_CLIBGIT2_SHIM_H
#include <git2.h>
#include <zlib.h>

/* git_libgit2_opts is variadic, which Swift cannot call: one non-variadic wrapper per option Tide sets. */
static inline int tide_git_set_owner_validation(int enabled) {
    return git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, enabled);
}
#endif
