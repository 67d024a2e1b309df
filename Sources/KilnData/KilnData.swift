// KilnData: iterators, datasets, DataLoader, transforms and image decoding.
