"""Reading real inputs (CHAP PM2.5, ERA5, DEM, IHS points, city polygons) onto the analysis grid, and the Zarr cube stores."""
