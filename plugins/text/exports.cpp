// The one export list of the text plugin library (plugins/text).
#include <bpkit/plugin.h>

#include "text_stages.h"

BPKIT_PLUGIN_LIBRARY(bpkit_text::Letters)
