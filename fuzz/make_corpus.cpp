// Writes the fuzz targets' seed corpora (fuzz/corpus/NAME/): small valid files of every kind each
// parser reads, made with the project's own writers (save_model, write_kaldi_ark,
// write_sphinx_mfc, EnrollmentDb) and with the libraries the readers use (OpenCV, libsndfile).
// The corpora are committed; rerun after a format change:
//   build-fuzz/bin/fuzz_make_corpus fuzz/corpus SOURCE_DIR
// (SOURCE_DIR: the repository, whose configs/*.yaml and examples/plugin/digits_levels.yaml
// become the pipeline seeds.)
#include <sndfile.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "bpkit/attrs.h"
#include "bpkit/layer.h"
#include "bpkit/model_file.h"
#include "bpkit/signature.h"
#include "feature_files.h"

namespace fs = std::filesystem;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  if (!out) throw std::runtime_error("cannot write " + p.string());
}

// A network from "kind attr=value ..." lines, saved with every parameter drawn by its initializer.
template <class T>
void model(const fs::path& path, const bpkit::Shape& input, const std::vector<std::string>& layers,
           const bpkit::Metadata& meta = {}, const bpkit::ExtraTensors<T>& extra = {}) {
  bpkit::Network<T> net(input, 7);
  for (const std::string& l : layers) {
    const size_t sp = l.find(' ');
    net.add(bpkit::make_layer<T>(l.substr(0, sp),
                                 bpkit::Attrs::parse(sp == std::string::npos ? "" : l.substr(sp))));
  }
  bpkit::save_model(net, path.string(), meta, extra);
}

void models(const fs::path& dir) {
  model<float>(dir / "mlp.bpk", {1, 4, 4}, {"flatten", "dense units=3", "relu", "dense units=2"},
               {{"accuracy", "0.5"}, {"classes", "a,b"}});
  model<double>(dir / "conv_double.bpk", {1, 6, 6},
                {"conv2d filters=2 kernel=3 padding=1 activation=relu", "maxpool2d", "batchnorm",
                 "flatten", "dropout p=0.25", "dense units=2 bias=0"});
  model<float>(dir / "recurrent.bpk", {-1, 3},
               {"lstm units=2 bidirectional=1", "gru units=2 output=sequence", "rnn units=2",
                "frame_dense units=3"});
  model<float>(dir / "line.bpk", {1, 4, -1},
               {"conv2d filters=1 kernel=3 padding=1", "avgpool2d kernel=2 kernel_w=1", "columns",
                "frame_dense units=2"});
  model<float>(dir / "fixed_point.bpk", {4},
               {"fixed_point units=3 outputs=2 activation=tanh", "leaky_relu slope=0.1", "sigmoid",
                "l2_normalize", "reshape shape=2,1", "softmax"});
  bpkit::Tensor<float> moment({2, 3}, 0.5f);
  model<float>(dir / "checkpoint.bpk", {3}, {"dense units=2 init=glorot", "tanh"},
               {{"checkpoint.epochs_done", "1"}}, {{"adam.m0", moment}});
}

void feature_files(const fs::path& dir, const fs::path& scratch) {
  // Each seed starts with the byte that chooses the reader (fuzz_feature_files.cpp).
  bpkit::Tensor<float> a({3, 2}), b({2, 3});
  for (int64_t i = 0; i < a.size(); ++i) a.data()[i] = float(i) - 2.5f;
  for (int64_t i = 0; i < b.size(); ++i) b.data()[i] = 0.25f * float(i);
  auto seed = [&](const std::string& name, char mode, const fs::path& file) {
    write_all(dir / name, std::string(1, mode) + read_all(file));
  };
  bpkit_audio::write_kaldi_ark((scratch / "bin.ark").string(), {{"utt1", a}, {"utt2", b}}, false,
                               (scratch / "bin.scp").string());
  seed("ark_binary", 0, scratch / "bin.ark");
  bpkit_audio::write_kaldi_ark((scratch / "txt.ark").string(), {{"utt1", a}, {"utt2", b}}, true);
  seed("ark_text", 0, scratch / "txt.ark");
  // A lone matrix: an archive entry without its key.
  const std::string bin = read_all(scratch / "bin.ark");
  write_all(dir / "matrix_binary", std::string(1, 1) + bin.substr(5, bin.find("utt2") - 5));
  const std::string txt = read_all(scratch / "txt.ark");
  write_all(dir / "matrix_text", std::string(1, 1) + txt.substr(6, txt.find("utt2") - 6));
  bpkit::Tensor<float> frames({4, 13});
  for (int64_t i = 0; i < frames.size(); ++i) frames.data()[i] = std::sin(0.1f * float(i));
  bpkit_audio::write_sphinx_mfc((scratch / "le.mfc").string(), frames);
  seed("sphinx_little", 2, scratch / "le.mfc");
  bpkit_audio::write_sphinx_mfc((scratch / "be.mfc").string(), frames,
                                bpkit_audio::ByteOrder::kBig);
  seed("sphinx_big", 2, scratch / "be.mfc");
  seed("detect_ark", 3, scratch / "bin.ark");
  seed("detect_sphinx", 3, scratch / "le.mfc");
  // Script files pointing at the fuzzer's a.ark (utt1 binary at offset 0, utt2 as text).
  write_all(dir / "scp", std::string(1, 4) + "utt1 a.ark:5\nutt2 a.ark:" +
                             std::to_string(bin.find("utt2") + 5) + "\n");
  write_all(dir / "scp_whole_file", std::string(1, 4) + "m x.scp\n");
}

void images(const fs::path& dir) {
  cv::Mat gray(5, 7, CV_8UC1), color(4, 6, CV_8UC3), alpha(3, 3, CV_8UC4), deep(4, 4, CV_16UC1);
  cv::randu(gray, 0, 255);
  cv::randu(color, 0, 255);
  cv::randu(alpha, 0, 255);
  cv::randu(deep, 0, 65535);
  const std::vector<std::pair<std::string, cv::Mat>> files = {
      {"gray.png", gray}, {"rgba.png", alpha},  {"deep.png", deep},  {"color.jpg", color},
      {"gray.bmp", gray}, {"color.bmp", color}, {"gray.pgm", gray},  {"color.ppm", color},
      {"deep.pgm", deep}, {"gray.tiff", gray},  {"deep.tiff", deep}, {"color.webp", color},
      {"gray.pbm", gray}, {"color.sr", color}};
  for (const auto& [name, m] : files)
    if (!cv::imwrite((dir / name).string(), m)) throw std::runtime_error("imwrite " + name);
  // Float images and JPEG 2000, where this OpenCV writes them.
  cv::Mat hdr(3, 4, CV_32FC3), tile(32, 32, CV_8UC1);  // OpenJPEG needs 32x32 for its levels
  cv::randu(hdr, 0, 2);
  cv::randu(tile, 0, 255);
  for (const auto& [name, m] : std::vector<std::pair<std::string, cv::Mat>>{
           {"color.pfm", hdr}, {"color.hdr", hdr}, {"color.exr", hdr}, {"gray.jp2", tile}})
    if (cv::haveImageWriter(name)) cv::imwrite((dir / name).string(), m);
  // PAM and ASCII PNM, written by hand (OpenCV writes binary P5/P6 and no PAM by default).
  write_all(dir / "gray.pam",
            "P7\nWIDTH 2\nHEIGHT 2\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n"
            "\x01\x80\xff\x10");
  write_all(dir / "ascii.pgm", "P2\n# comment\n3 2\n1000\n0 500 1000\n1 2 3\n");
}

void audio(const fs::path& dir) {
  struct Format {
    const char* name;
    int format, rate, channels, frames;
  };
  const Format formats[] = {
      {"pcm16.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 400},
      {"stereo8k.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 8000, 2, 300},
      {"float.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 22050, 1, 300},
      {"pcm24.aiff", SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 16000, 1, 200},
      {"mono.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, 800},
      {"mono.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 16000, 1, 1600},
      {"ulaw.au", SF_FORMAT_AU | SF_FORMAT_ULAW, 8000, 1, 300},
  };
  for (const Format& f : formats) {
    SF_INFO info{};
    info.samplerate = f.rate;
    info.channels = f.channels;
    info.format = f.format;
    SNDFILE* s = sf_open((dir / f.name).string().c_str(), SFM_WRITE, &info);
    if (!s)
      throw std::runtime_error(std::string("sf_open ") + f.name + ": " + sf_strerror(nullptr));
    std::vector<float> x(size_t(f.frames) * size_t(f.channels));
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.5f * std::sin(0.07f * float(i));
    sf_writef_float(s, x.data(), f.frames);
    sf_close(s);
  }
}

void enrollments(const fs::path& dir, const fs::path& scratch) {
  bpkit::EnrollmentDb db((scratch / "db").string());
  db.add(
      "w", "model-1a2b",
      {{"ref-1.png", "00ff", {0.5f, -0.25f, 0.125f}}, {"ref 2.jpg", "a1b2", {1e-3f, 2.5f, -1e6f}}});
  fs::copy_file(scratch / "db" / "w.json", dir / "writer.json");
}

void manifests(const fs::path& dir) {
  write_all(dir / "classes.tsv", "images/3_1.png\t3\n# a comment\n\nimages/7_2.png\t7\n");
  write_all(dir / "transcripts.tsv", "lines/a b.png\thello world\n/abs/line.png\t0123 '9'\n");
  write_all(dir / "spaces.tsv", "a.wav seven two\r\nb.wav\tnine\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: fuzz_make_corpus OUT_DIR SOURCE_DIR\n");
    return 2;
  }
  try {
    const fs::path out = argv[1], src = argv[2];
    const fs::path scratch = out / ".scratch";
    fs::create_directories(scratch);
    for (const char* t : {"model_file", "pipeline_config", "manifest", "enrollment", "image_read",
                          "audio_read", "feature_files"})
      fs::create_directories(out / t);
    models(out / "model_file");
    for (const auto& e : fs::directory_iterator(src / "configs"))
      if (e.path().extension() == ".yaml")
        fs::copy_file(e.path(), out / "pipeline_config" / e.path().filename(),
                      fs::copy_options::overwrite_existing);
    fs::copy_file(src / "examples" / "plugin" / "digits_levels.yaml",
                  out / "pipeline_config" / "digits_levels.yaml",
                  fs::copy_options::overwrite_existing);
    manifests(out / "manifest");
    enrollments(out / "enrollment", scratch);
    images(out / "image_read");
    audio(out / "audio_read");
    feature_files(out / "feature_files", scratch);
    fs::remove_all(scratch);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_make_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
