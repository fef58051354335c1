// The one export list of the built-in image plugin library (BPKIT_PLUGIN_LIBRARY may appear only
// once per library): every stage of image_plugins.cpp, ocr_stages.cpp and face_stages.cpp.
#include <bpkit/plugin.h>

#include "face_stages.h"
#include "image_stages.h"
#include "ocr_stages.h"

BPKIT_PLUGIN_LIBRARY(bpkit_image::Read, bpkit_image::Gray, bpkit_image::Resize, bpkit_image::Invert,
                     bpkit_image::Normalize, bpkit_image::DeskewMoments, bpkit_image::ToFeatures,
                     bpkit_image::Pick, bpkit_image::Binarize, bpkit_image::Deskew,
                     bpkit_image::Denoise, bpkit_image::Contrast, bpkit_image::Lines,
                     bpkit_image::LineHeight, bpkit_image::Chars, bpkit_image::FaceDetect,
                     bpkit_image::FaceAlign)
