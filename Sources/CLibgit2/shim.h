#ifndef TIDE_CLIBGIT2_SHIM_H
#define TIDE_CLIBGIT2_SHIM_H
#include <git2.h>
#endif
