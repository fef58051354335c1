// Signal generators and filters for audio augmentation, shared by the random plugin stages
// (audio.noise, audio.reverb) and the speech-data generator (tools/make_speech_digits).
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace bpkit_audio {

// `n` samples of noise of one colour, scaled to unit mean power: "white", "pink" (-3 dB/octave,
// Kellet's filter), "brown" (-6 dB/octave, leaky integrator), "hum" (mains at 50 or 60 Hz with
// four harmonics over a faint floor; `rate` sets its frequency). Throws std::invalid_argument for
// another colour.
std::vector<float> colored_noise(const std::string& color, size_t n, int rate,
                                 std::mt19937_64& rng);

// A room's impulse response: a direct path of 1 followed by Gaussian noise decaying by 60 dB over
// rt60 seconds (Polack's model), rt60 / 2 seconds long.
std::vector<float> room_response(double rt60, int rate, std::mt19937_64& rng);

// x convolved with h (FFT), x.size() + h.size() - 1 samples.
std::vector<float> fft_convolve(const std::vector<float>& x, const std::vector<float>& h);

// Mean of x^2 (0 for no samples).
double mean_power(const std::vector<float>& x);

// Filters x in place with the biquad y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]
// (coefficients already divided by a0; direct form I, state in double, from rest).
void biquad(std::vector<float>& x, double b0, double b1, double b2, double a1, double a2);

}  // namespace bpkit_audio
