"""Public numpy API over the kernels (STL, regression, kriging, outliers, region growing, interpolation)."""
