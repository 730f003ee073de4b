"""Generator families (GAN, VAE, PixelCNN, diffusion) and the registry that names them."""
