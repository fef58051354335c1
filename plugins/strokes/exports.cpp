// The one export list of the signature plugin library (plugins/strokes).
#include <bpkit/plugin.h>

#include "signature_stages.h"

BPKIT_PLUGIN_LIBRARY(bpkit_strokes::SignatureClean, bpkit_strokes::SignatureFeatures,
                     bpkit_strokes::SignatureImage)
