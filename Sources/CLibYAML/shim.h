#ifndef TIDE_CLIBYAML_SHIM_H
#define TIDE_CLIBYAML_SHIM_H
/* Debian's libyaml (libyaml-dev): the manifest decoder reads its event stream (YAMLComposer). */
#include <yaml.h>
#endif
