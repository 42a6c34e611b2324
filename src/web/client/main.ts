/** The page's entry point, bundled into `assets/app.js`. */
import { startPage } from './app.js'

// only in a browser: node imports every module of src in the tests
if (typeof document !== 'undefined') startPage(document.getElementById('app') as HTMLElement)
