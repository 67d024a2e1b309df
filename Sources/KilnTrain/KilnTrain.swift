// KilnTrain: initializers, optimizers, learning-rate schedules, metrics and Module.
