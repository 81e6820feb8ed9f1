"""Wrong answers for the self-checks of the preface:
:mod:`dlib.course.checks.part0_getting_started`."""



WRONG_ANSWERS = {
    "pre-ex-beta": [
        {"beta_sum_shapes": 10 / 12288, "beta_mean_dsprites": 6 * 4096 / 10},  # inverted
        {"beta_sum_shapes": 4096 / 10, "beta_mean_dsprites": 60 / 4096},  # forgot channels
        {"beta_sum_shapes": 1228.8},  # a missing part
        {"beta_sum_shapes": -1228.8, "beta_mean_dsprites": 60 / 4096},  # sign
        (1228.8, 60 / 4096),  # not a dict
    ],
}
